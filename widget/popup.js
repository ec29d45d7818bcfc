/* Storetag renderer for actions of kind "popup": one modal dialog at a time, drawn in a Shadow DOM.
   Handshake: set window.__storetag_renderers.popup, then call window.__storetag_loaded("popup"). */
(function () {
  "use strict";
  try {
    var w = window, d = document, n = navigator;
    var renderers = (w.__storetag_renderers = w.__storetag_renderers || {});
    // The core copies its nonce onto this script; a <style> fallback needs it under a strict CSP.
    var me = d.currentScript, nonce = me && me.nonce;
    var FOCUSABLE = 'a[href],area[href],button:not([disabled]),input:not([disabled]):not([type="hidden"]),select:not([disabled]),textarea:not([disabled]),iframe,[contenteditable],[tabindex]:not([tabindex="-1"])';
    var CSS =
      ':host{all:initial!important;display:block!important;position:fixed!important;inset:0!important;z-index:2147483647!important}' +
      '.st-backdrop{position:fixed;inset:0;display:flex;box-sizing:border-box;padding:16px;overflow:auto;background:rgba(17,24,39,.55);' +
      'font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif;color:#111827;-webkit-font-smoothing:antialiased}' +
      // margin:auto (not align-items) keeps a dialog taller than the screen scrollable from its top.
      '.st-dialog{position:relative;box-sizing:border-box;width:100%;max-width:420px;margin:auto;padding:28px 24px 24px;' +
      'background:#fff;border-radius:12px;box-shadow:0 20px 60px rgba(0,0,0,.3);outline:none;animation:st-in .18s ease-out}' +
      '.st-close{position:absolute;top:8px;right:8px;width:36px;height:36px;padding:0;border:0;border-radius:50%;background:none;' +
      'color:#6b7280;font-family:inherit;font-size:24px;line-height:1;cursor:pointer}' +
      '.st-close:hover{background:#f3f4f6;color:#111827}' +
      '.st-close:focus-visible,.st-cta:focus-visible,.st-later:focus-visible,.st-content a:focus-visible{outline:2px solid #2563eb;outline-offset:2px}' +
      '.st-content h1,.st-content h2,.st-content h3{margin:0 0 8px;padding-right:28px;font-size:22px;line-height:1.25;font-weight:700}' +
      '.st-content p{margin:0 0 16px}.st-content>:last-child{margin-bottom:0}' +
      '.st-content img{max-width:100%;height:auto}.st-content a{color:#2563eb}' +
      '.st-cta,.st-content a.st-cta{display:inline-block;box-sizing:border-box;padding:12px 20px;border:0;border-radius:8px;' +
      'background:#111827;color:#fff;font:inherit;font-weight:600;text-align:center;text-decoration:none;cursor:pointer}' +
      '.st-cta:hover{background:#374151}' +
      '.st-later{margin-left:8px;padding:12px 8px;border:0;background:none;color:#4b5563;font:inherit;text-decoration:underline;cursor:pointer}' +
      '.st-code{display:flex;gap:8px;align-items:center;margin:16px 0}.st-code code{flex:1;padding:10px 12px;border:2px dashed #9ca3af;' +
      'border-radius:8px;font:600 18px/1.2 ui-monospace,Menlo,Consolas,monospace;letter-spacing:.04em;word-break:break-all}' +
      '.st-copy{padding:10px 14px;border:1px solid #d1d5db;border-radius:8px;background:#fff;font:inherit;cursor:pointer}' +
      '@media (max-width:480px){.st-backdrop{padding:12px}.st-dialog{padding:24px 18px 18px}.st-cta{display:block;width:100%}}' +
      '@media (prefers-reduced-motion:reduce){.st-dialog{animation:none}}' +
      '@keyframes st-in{from{opacity:0;transform:translateY(8px)}}';
    var sheet;
    var pending = [], current = null;

    function safe(f) {
      return function () {
        try {
          return f.apply(this, arguments);
        } catch (e) {}
      };
    }
    // Constructed stylesheets are not subject to CSP style-src; <style> is the fallback.
    function style(root) {
      try {
        sheet = sheet || new CSSStyleSheet();
        if (!sheet.cssRules.length) sheet.replaceSync(CSS);
        root.adoptedStyleSheets = [sheet];
      } catch (e) {
        var s = d.createElement("style");
        if (nonce) s.nonce = nonce;
        s.textContent = CSS;
        root.appendChild(s);
      }
    }

    function next() {
      if (current || !pending.length) return;
      if (!d.body) return d.addEventListener("DOMContentLoaded", safe(next));
      var item = pending.shift();
      try {
        open(item[0], item[1]);
      } catch (e) {
        if (current) current.remove();
        current = null;
        next();
      }
    }

    function noop() {}
    // The server escapes every value, but a template may still put a visitor's string into a link: only
    // web, mail and phone links are kept (and data: images), so a javascript: URL can never run.
    function links(root) {
      [].forEach.call(root.querySelectorAll("[href],[src],[action],[formaction]"), function (el) {
        ["href", "src", "action", "formaction"].forEach(function (name) {
          var value = el.getAttribute(name), scheme;
          if (value == null) return;
          try {
            scheme = new URL(value, location.href).protocol;
          } catch (e) {}
          if (!/^(https?|mailto|tel):$/.test(scheme) && !(name == "src" && scheme == "data:")) el.removeAttribute(name);
        });
      });
    }
    function pad(v) {
      return (v < 10 ? "0" : "") + v;
    }
    // A [data-storetag-copy=CODE] button copies its code; it is not a click on the offer itself.
    function copy(button) {
      var code = button.getAttribute("data-storetag-copy"), done = function () {
        button.textContent = "Copied!";
      };
      try {
        n.clipboard.writeText(code).then(done, noop);
      } catch (e) {}
    }

    function open(action, ctx) {
      var host = d.createElement("div"), root, backdrop, dialog, close, content, heading, target;
      var back = d.activeElement, pressed = null, closed = false;
      // A renderer that has the pop-up draw its action (the push prompt) hears what happens through `on`.
      var report = function (type, target) {
        try {
          ctx.report(type, {action: action.id});
          if (action.on) action.on(type, target);
        } catch (e) {}
      };
      host.setAttribute("data-storetag", "popup");
      root = host.attachShadow({mode: "open"});
      style(root);
      backdrop = d.createElement("div");
      backdrop.className = "st-backdrop";
      dialog = d.createElement("div");
      dialog.className = "st-dialog";
      dialog.setAttribute("role", "dialog");
      dialog.setAttribute("aria-modal", "true");
      dialog.tabIndex = -1;
      close = d.createElement("button");
      close.type = "button";
      close.className = "st-close";
      close.setAttribute("aria-label", "Close");
      close.textContent = "\u00d7";
      content = d.createElement("div");
      content.className = "st-content";
      // Rendered by the server with autoescaping: trusted output.
      content.innerHTML = action.html || "";
      links(content);
      heading = content.querySelector("h1,h2,h3");
      if (heading) {
        heading.id = heading.id || "st-title";
        dialog.setAttribute("aria-labelledby", heading.id);
      } else {
        dialog.setAttribute("aria-label", "Offer");
      }
      dialog.appendChild(close);
      dialog.appendChild(content);
      backdrop.appendChild(dialog);
      root.appendChild(backdrop);

      function focusables() {
        return [].filter.call(dialog.querySelectorAll(FOCUSABLE), function (el) {
          return el.getClientRects().length;
        });
      }
      // Offers: [data-storetag-countdown=EPOCH_MS] counts down to the code's expiry.
      var clocks = content.querySelectorAll("[data-storetag-countdown]");
      var tick = safe(function () {
        [].forEach.call(clocks, function (el) {
          var s = Math.max(0, Math.floor((+el.getAttribute("data-storetag-countdown") - Date.now()) / 1000));
          var h = Math.floor(s / 3600), m = Math.floor(s / 60) % 60;
          el.textContent = (h ? h + ":" + pad(m) : m) + ":" + pad(s % 60);
        });
      });
      var ticker = clocks.length ? setInterval(tick, 1000) : 0;
      tick();
      function shut(how) {
        if (closed) return;
        closed = true;
        clearInterval(ticker);
        d.removeEventListener("keydown", onKey, true);
        d.removeEventListener("focusin", onFocus, true);
        host.remove();
        current = null;
        if (how) report("action_closed");
        try {
          if (back && back.isConnected && back.focus) back.focus();
        } catch (e) {}
        setTimeout(safe(next), 0);
      }
      var onKey = safe(function (e) {
        var list, first, last, active = root.activeElement;
        if (e.key == "Escape" || e.key == "Esc") {
          e.preventDefault();
          return shut(1);
        }
        if (e.key != "Tab") return;
        list = focusables();
        first = list[0];
        last = list[list.length - 1];
        if (!first) {
          e.preventDefault();
          dialog.focus();
        } else if (e.shiftKey && (active == first || active == dialog || !active)) {
          e.preventDefault();
          last.focus();
        } else if (!e.shiftKey && (active == last || !active)) {
          e.preventDefault();
          first.focus();
        }
      });
      // Focus that lands outside the pop-up (the page behind it) is brought back into the dialog.
      var onFocus = safe(function (e) {
        if (e.target !== host) dialog.focus();
      });
      backdrop.addEventListener("pointerdown", function (e) {
        pressed = e.target;
      });
      backdrop.addEventListener("click", safe(function (e) {
        var cta;
        // A press inside the dialog that ends on the backdrop (a text selection) is not a backdrop click.
        if (e.target == backdrop && !dialog.contains(pressed)) return shut(1);
        // A [data-storetag-close] button ("not now") closes it like the close button.
        if (close.contains(e.target) || (e.target.closest && e.target.closest("[data-storetag-close]"))) return shut(1);
        cta = e.target.closest && e.target.closest("[data-storetag-copy]");
        if (cta) return copy(cta);
        cta = e.target.closest && e.target.closest("a,button,[data-storetag-cta]");
        if (cta && content.contains(cta)) {
          report("action_clicked", cta);
          // After this click's default action (follow a link, submit a form) has run.
          setTimeout(safe(function () {
            shut(0);
          }), 0);
        }
      }));
      d.addEventListener("keydown", onKey, true);
      d.addEventListener("focusin", onFocus, true);
      current = host;
      d.body.appendChild(host);
      report("action_shown");
      target = focusables().filter(function (el) {
        return content.contains(el);
      })[0] || dialog;
      target.focus();
    }

    // Loaded twice: keep the first copy, which owns the queue and the open pop-up. Offers are pop-ups
    // with a code, drawn the same way.
    renderers.popup = renderers.popup || safe(function (action, ctx) {
      pending.push([action, ctx]);
      next();
    });
    renderers.offer = renderers.popup;
    if (w.__storetag_loaded) {
      w.__storetag_loaded("popup");
      w.__storetag_loaded("offer");
    }
  } catch (e) {}
})();
