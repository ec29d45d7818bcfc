/* Storetag renderer for actions of kind "recs": a product list drawn into the shadow root of its slot,
   <div data-storetag-slot="NAME">. Reports recs_shown once the slot is half on screen, and recs_clicked
   for a click on an item (any element with data-storetag-item). The list inherits the page's font and
   colour; the shop's other CSS cannot reach it.
   Handshake: set window.__storetag_renderers.recs, then call window.__storetag_loaded("recs"). */
(function () {
  "use strict";
  try {
    var w = window, d = document;
    var renderers = (w.__storetag_renderers = w.__storetag_renderers || {});
    // The core copies its nonce onto this script; a <style> fallback needs it under a strict CSP.
    var me = d.currentScript, nonce = me && me.nonce;
    var CSS =
      ':host{display:block}' +
      '.st-recs{margin:32px 0}' +
      '.st-recs-title{margin:0 0 16px;font-size:1.35em;line-height:1.25}' +
      '.st-recs-list{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:20px;margin:0;padding:0;list-style:none}' +
      '.st-rec-link{display:block;color:inherit;text-decoration:none}' +
      '.st-rec-image{display:block;width:100%;aspect-ratio:1;object-fit:cover;border-radius:12px;background:#f3f4f6}' +
      '.st-rec-title{display:block;margin:10px 0 2px;font-weight:600}' +
      '.st-rec-link:hover .st-rec-title{text-decoration:underline}' +
      '.st-rec-link:focus-visible{outline:2px solid #2563eb;outline-offset:3px;border-radius:12px}' +
      '.st-rec-price{opacity:.75}.st-rec-price s{margin-right:4px}' +
      '@media (max-width:480px){.st-recs-list{grid-template-columns:repeat(2,1fr);gap:14px}}';
    var sheet;

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

    function draw(action, ctx) {
      var slots = d.querySelectorAll("[data-storetag-slot]"), host, root, box, items, seen = 0, i;
      // Compared as strings rather than put into a selector: a slot name is never parsed as CSS.
      for (i = 0; i < slots.length && !host; i++) if (slots[i].getAttribute("data-storetag-slot") === action.slot) host = slots[i];
      if (!host) return;
      root = host.shadowRoot || host.attachShadow({mode: "open"});
      // A newer list for the slot replaces the one drawn before, listeners and all.
      box = root.querySelector(".st-slot");
      if (box) box.remove();
      else style(root);
      box = d.createElement("div");
      box.className = "st-slot";
      root.appendChild(box);
      // Rendered by the server with autoescaping and http(s)-only links: trusted output.
      box.innerHTML = action.html || "";
      items = [].map.call(box.querySelectorAll("[data-storetag-item]"), function (el) {
        return el.getAttribute("data-storetag-item");
      });
      function report(type, props) {
        props.slot = action.slot;
        props.strategy = action.strategy;
        ctx.report(type, props);
      }
      function shown() {
        if (!seen) report("recs_shown", {items: items});
        seen = 1;
      }
      if (w.IntersectionObserver) {
        var watch = new IntersectionObserver(safe(function (entries) {
          if (entries.some(function (e) {
            return e.isIntersecting;
          })) {
            watch.disconnect();
            shown();
          }
        }), {threshold: 0.5});
        watch.observe(host);
      } else {
        shown();
      }
      box.addEventListener("click", safe(function (e) {
        var item = e.target.closest && e.target.closest("[data-storetag-item]");
        if (!item || !box.contains(item)) return;
        shown();
        report("recs_clicked", {item: item.getAttribute("data-storetag-item")});
      }));
    }

    // Loaded twice: keep the first copy.
    renderers.recs = renderers.recs || safe(function (action, ctx) {
      if (d.readyState == "loading") d.addEventListener("DOMContentLoaded", safe(function () {
        draw(action, ctx);
      }));
      else draw(action, ctx);
    });
    if (w.__storetag_loaded) w.__storetag_loaded("recs");
  } catch (e) {}
})();
