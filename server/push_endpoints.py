"""Where pushes may go: https endpoints on public hosts only, so the server never becomes a way to make
requests into the shop's own network (SSRF).

A subscription's endpoint is checked when it is stored (its name resolved) and again on every connection:
the sender's aiohttp resolver refuses a name that now resolves to a private address (DNS rebinding), and
an IP literal, which aiohttp connects to without resolving, is checked before sending.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver


class UnsafeEndpoint(OSError):
    pass


def is_public(address: str) -> bool:
    return ipaddress.ip_address(address.split("%")[0]).is_global


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host.strip("[]")))
    except ValueError:
        return None


def check_url(endpoint: str, allow_private: bool) -> str:
    """The endpoint's host; raises UnsafeEndpoint for anything but an https URL on a public host (a
    private IP literal, credentials, a missing host). With `allow_private`, http and private addresses
    pass (tests, local receivers)."""
    try:
        parts = urlsplit(endpoint)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise UnsafeEndpoint(f"endpoint is not a URL: {exc}") from exc
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        raise UnsafeEndpoint("endpoint must be an https URL")
    if not parts.hostname:
        raise UnsafeEndpoint("endpoint has no host")
    if parts.username is not None or parts.password is not None:
        raise UnsafeEndpoint("endpoint must not carry credentials")
    literal = _literal(parts.hostname)
    if literal is not None and not allow_private and not is_public(literal):
        raise UnsafeEndpoint(f"endpoint host {literal} is not a public address")
    return parts.hostname


async def check_endpoint(endpoint: str, allow_private: bool) -> None:
    """check_url, and the host's name must resolve to public addresses only."""
    host = check_url(endpoint, allow_private)
    if allow_private or _literal(host) is not None:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, 443, type=socket.SOCK_STREAM)
    except OSError as exc:
        raise UnsafeEndpoint(f"endpoint host {host!r} does not resolve") from exc
    private = sorted({str(info[4][0]) for info in infos if not is_public(str(info[4][0]))})
    if private:
        raise UnsafeEndpoint(f"endpoint host {host!r} resolves to non-public {', '.join(private)}")


class PublicResolver(ThreadedResolver):
    """aiohttp's resolver, refusing any name that resolves to a non-public address."""

    def __init__(self, allow_private: bool) -> None:
        super().__init__()
        self.allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found = await super().resolve(host, port, family)
        if not self.allow_private and any(not is_public(result["host"]) for result in found):
            raise UnsafeEndpoint(f"{host!r} resolves to a non-public address")
        return found
