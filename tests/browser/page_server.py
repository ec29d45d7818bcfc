"""Small HTML pages for browser tests, served from an origin of their own by a background thread."""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# path → (HTML, extra response headers)
Render = Callable[[str], tuple[str, dict[str, str]]]


class PageServer:
    def __init__(self, port: int, render: Render) -> None:
        self.origin = f"http://127.0.0.1:{port}"

        class Pages(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                html, headers = render(self.path)
                body = html.encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Pages)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
