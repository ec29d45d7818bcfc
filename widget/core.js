/* Storetag core: ids, event queue with batching, sending, retry, action arming, lazy renderers.
   The server inlines the site's config as the argument of this function. The core never throws into
   the page and never logs: every entry point (page calls, timers, listeners, promise callbacks) is
   wrapped by `safe`. */
(function (config) {
  "use strict";
  try {
    var w = window, d = document, n = navigator, K = "storetag.", HEX = /^[0-9a-f]{32}$/;
    // Loaded twice on one page: the first copy already owns window.storetag.
    if (w.storetag && w.storetag.track) return;

    function noop() {}
    function safe(f) {
      return function () {
        try {
          return f.apply(this, arguments);
        } catch (e) {}
      };
    }
    function get(k) {
      try {
        return localStorage.getItem(K + k);
      } catch (e) {
        return null;
      }
    }
    function set(k, v) {
      try {
        localStorage.setItem(K + k, v);
      } catch (e) {}
    }
    function rid() {
      var a = new Uint8Array(16), s = "", i;
      try {
        crypto.getRandomValues(a);
      } catch (e) {
        for (i = 0; i < 16; i++) a[i] = Math.random() * 256;
      }
      for (i = 0; i < 16; i++) s += (a[i] | 256).toString(16).slice(1);
      return s;
    }
    function cut(s, max) {
      return String(s || "").slice(0, max);
    }

    // `currentScript` is only set while this script first runs; its nonce lets modules load under CSP.
    var me = d.currentScript, nonce = me && (me.nonce || me.getAttribute("nonce"));
    var url = config.api + "/v1/events";
    var vid = get("vid");
    if (!HEX.test(vid)) set("vid", (vid = rid()));
    var sid, sat = 0;

    // A new session after 30 minutes without an event; storage shares it between tabs when available.
    function session() {
      var now = Date.now(), s = get("sid") || sid, a = +(get("sat") || sat);
      sid = HEX.test(s) && now - a < 18e5 ? s : rid();
      sat = now;
      set("sid", sid);
      set("sat", now);
      return sid;
    }

    var queue = [], timer = 0;
    function enqueue(type, props) {
      queue.push({
        type: type,
        ts: Date.now(),
        url: cut(location.href, 2048),
        ref: cut(d.referrer, 2048),
        props: props || {},
      });
      timer = timer || setTimeout(flush, 0);
    }
    // The server takes at most 100 events per batch.
    function take() {
      return JSON.stringify({site: config.site, visitor: vid, session: session(), batch: rid(), events: queue.splice(0, 100)});
    }
    var flush = safe(function () {
      timer = 0;
      while (queue.length) send(take(), 1);
    });
    // On page hide a fetch may not finish; the browser delivers a beacon after the page is gone.
    var beacon = safe(function () {
      while (queue.length) {
        var body = take();
        if (!(n.sendBeacon && n.sendBeacon(url, new Blob([body], {type: "text/plain"})))) keep(body);
      }
    });

    // Resolves to the answer (2xx), or 0 for a 4xx that can never succeed; rejects when worth a retry.
    function post(body) {
      var c = new AbortController(), t = setTimeout(function () {
        c.abort();
      }, 5000);
      // text/plain needs no CORS preflight; keepalive lets the request outlive the page.
      return fetch(url, {method: "POST", body: body, headers: {"Content-Type": "text/plain"}, keepalive: true, credentials: "omit", signal: c.signal}).then(function (r) {
        clearTimeout(t);
        if (r.status > 499 || r.status == 429) throw 0;
        return r.ok ? r.json().catch(function () {
          return {};
        }) : 0;
      });
    }
    function send(body, live) {
      try {
        post(body).then(safe(function (answer) {
          if (!answer) return;
          if (live) arm(answer.actions);
          drain();
        }), function () {
          keep(body);
        }).catch(noop);
      } catch (e) {
        keep(body);
      }
    }

    // Failed batches wait in localStorage (at most 30, for 24 h) and are resent as they were, with the
    // same batch id, so the server applies each once.
    function kept() {
      var now = Date.now(), list;
      try {
        list = JSON.parse(get("retry"));
      } catch (e) {}
      return (Array.isArray(list) ? list : []).filter(function (x) {
        return x && x.body && now - x.t < 864e5;
      });
    }
    function keep(body) {
      // A body over 64 kB is refused by keepalive and by the server alike.
      if (body.length < 65536) set("retry", JSON.stringify(kept().concat({t: Date.now(), body: body}).slice(-30)));
    }
    function forget(body) {
      set("retry", JSON.stringify(kept().filter(function (x) {
        return x.body != body;
      })));
    }
    var draining = 0;
    var drain = safe(function () {
      var first = kept()[0];
      if (draining || !first) return;
      draining = 1;
      // One at a time; a batch stays stored until the server took it (or refused it for good).
      post(first.body).then(safe(function () {
        draining = 0;
        forget(first.body);
        drain();
      }), function () {
        draining = 0;
      }).catch(noop);
    });

    // Triggers: name -> function (fire, argument) that arms and may return a function that disarms.
    // The argument is what follows the first ":" in action.trigger ("delay:5" -> "5").
    var triggers = {
      now: function (fire) {
        fire();
      },
    };
    var armed = {}, shown = {};
    // Each answer replaces the armed actions that have not fired yet.
    function arm(actions) {
      var next = {}, id, i, a;
      actions = Array.isArray(actions) ? actions : [];
      for (i = 0; i < actions.length; i++) if ((a = actions[i])) next[a.id] = 1;
      for (id in armed) if (!next[id]) disarm(id);
      for (i = 0; i < actions.length; i++) {
        a = actions[i];
        if (a && !(Date.now() > a.expires) && !armed[a.id] && !shown[a.id]) start(a);
      }
    }
    function disarm(id) {
      var entry = armed[id];
      delete armed[id];
      if (entry) safe(entry.off)();
    }
    function start(a) {
      var parts = String(a.trigger).split(":"), t = triggers[parts[0]], entry = {off: noop};
      if (!t || !triggers.hasOwnProperty(parts[0])) return;
      armed[a.id] = entry;
      var off = safe(t)(safe(function () {
        if (armed[a.id] !== entry) return;
        disarm(a.id);
        if (Date.now() > a.expires) return;
        shown[a.id] = 1;
        draw(a);
      }), parts.slice(1).join(":"));
      if (typeof off == "function") entry.off = off;
    }

    // Renderer modules register window.__storetag_renderers[kind], then call window.__storetag_loaded(kind).
    var renderers = (w.__storetag_renderers = w.__storetag_renderers || {});
    var waiting = {}, ctx = {config: config, report: safe(enqueue)};
    function draw(a) {
      var kind = a.kind, src = (config.modules || {})[kind], s;
      if (renderers[kind]) return render(kind, a);
      if (!src) return;
      if (waiting[kind]) return waiting[kind].push(a);
      waiting[kind] = [a];
      s = d.createElement("script");
      s.async = true;
      s.src = src;
      if (nonce) s.nonce = nonce;
      // The load event is a second signal for modules that did not call __storetag_loaded.
      s.onload = function () {
        loaded(kind);
      };
      s.onerror = function () {
        delete waiting[kind];
      };
      (d.head || d.documentElement).appendChild(s);
    }
    function render(kind, a) {
      setTimeout(safe(function () {
        renderers[kind](a, ctx);
      }), 0);
    }
    var loaded = (w.__storetag_loaded = safe(function (kind) {
      var list = waiting[kind];
      if (!renderers[kind] || !list) return;
      delete waiting[kind];
      list.forEach(function (a) {
        render(kind, a);
      });
    }));

    // The page API: storetag("track", type, props) and storetag.track(type, props), same for identify.
    var commands = {
      track: function (type, props) {
        if (type && typeof type == "string") enqueue(type, props);
      },
      identify: function (customer, opts) {
        if (customer != null && customer !== "") enqueue("identify", Object.assign({}, opts, {customer_id: String(customer)}));
      },
    };
    var api = safe(function (name) {
      if (commands.hasOwnProperty(name)) commands[name].apply(null, [].slice.call(arguments, 1));
    });
    api.track = safe(commands.track);
    api.identify = safe(commands.identify);
    var early = (w.storetag && w.storetag.q) || [];
    w.storetag = api;

    var meta = d.querySelector('meta[name="storetag:page"]');
    enqueue("page_view", {page_type: cut(meta && meta.content, 300), title: cut(d.title, 300), lang: cut(n.language, 300)});
    for (var i = 0; i < early.length; i++) api.apply(null, early[i]);

    w.addEventListener("pagehide", beacon);
    d.addEventListener("visibilitychange", function () {
      if (d.visibilityState == "hidden") beacon();
    });
    setTimeout(drain, 0);
  } catch (e) {}
})(__STORETAG_CONFIG__);
