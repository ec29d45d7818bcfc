/* Storetag core: ids, event queue with batching, sending, retry, action arming, lazy renderers.
   The server inlines the site's config as the argument of this function. The core never throws into
   the page and never logs: every entry point (page calls, timers, listeners, promise callbacks) is
   wrapped by `safe`.
   Every function that runs on a page load is written `(function …)`: V8 compiles a parenthesized function
   with the script, on the streaming thread, instead of on the main thread when it is first called. */
(function (config) {
  "use strict";
  try {
    var w = window, d = document, n = navigator, K = "storetag.", HEX = /^[0-9a-f]{32}$/;
    // Loaded twice on one page: the first copy already owns window.storetag.
    if (w.storetag && w.storetag.track) return;

    function noop() {}
    var safe = (function (f) {
      return (function () {
        try {
          return f.apply(this, arguments);
        } catch (e) {}
      });
    });
    // Chromium: the first localStorage or document.cookie read of a page waits on synchronous IPC to the
    // browser process; later reads and all writes do not. So the core reads each store once per page at
    // most, and only once the page has loaded (see `boot`); reads the cookie only when storage has no
    // visitor id, by the asynchronous cookieStore where there is one; and writes only what changed.
    var get = (function (k) {
      try {
        return localStorage.getItem(K + k);
      } catch (e) {
        return null;
      }
    });
    var set = (function (k, v) {
      try {
        if (localStorage.getItem(K + k) !== String(v)) localStorage.setItem(K + k, v);
      } catch (e) {}
    });
    var rid = (function () {
      var a = new Uint8Array(16), s = "", i;
      try {
        crypto.getRandomValues(a);
      } catch (e) {
        for (i = 0; i < 16; i++) a[i] = Math.random() * 256;
      }
      for (i = 0; i < 16; i++) s += (a[i] | 256).toString(16).slice(1);
      return s;
    });
    var cut = (function (s, max) {
      return String(s || "").slice(0, max);
    });

    // `currentScript` is only set while this script first runs; its nonce lets modules load under CSP.
    var me = d.currentScript, nonce = me && (me.nonce || me.getAttribute("nonce"));
    var url = config.api + "/v1/events";
    // The visitor id also lives in a first-party cookie: clearing one store does not make a new visitor
    // (the server's caps follow the id). Storage wins; the cookie is read only when storage lost the id,
    // and written when it differs or, without reading it, once a day ("ck": the day it was last written).
    // The id is settled when the tag starts (see `boot`), or at once by whatever needs it first.
    var vid = "", day = "" + Math.floor(Date.now() / 864e5);
    var storedId = (function () {
      var v = get("vid");
      return HEX.test(v) ? v : "";
    });
    var cookieId = (function () {
      try {
        return (d.cookie.match(/(?:^|; )_stvid=([0-9a-f]{32})/) || [])[1] || "";
      } catch (e) {
        return "";
      }
    });
    // `cookie`: the id the cookie holds ("" for none, or when not read: then it is written).
    var settle = (function (v, cookie) {
      if (vid) return;
      vid = v || cookie || rid();
      try {
        if (vid != cookie) {
          d.cookie = "_stvid=" + vid + ";path=/;max-age=31536000;SameSite=Lax" + (location.protocol == "https:" ? ";Secure" : "");
          set("ck", day);
        }
      } catch (e) {}
      set("vid", vid);
    });
    var visitor = (function () {
      var v = vid || storedId();
      if (!vid) settle(v, v ? (get("ck") == day ? v : "") : cookieId());
      return vid;
    });
    var sid, sat = 0;

    // A new session after 30 minutes without an event; storage shares it between tabs when available.
    var session = (function () {
      var now = Date.now(), s = get("sid") || sid, a = +(get("sat") || sat);
      sid = HEX.test(s) && now - a < 18e5 ? s : rid();
      sat = now;
      set("sid", sid);
      set("sat", now);
      return sid;
    });

    // Nothing is sent before the tag has started (see `boot` below), except by a beacon.
    var queue = [], timer = 0, started = 0;
    var enqueue = (function (type, props) {
      queue.push({
        type: type,
        ts: Date.now(),
        url: cut(location.href, 2048),
        ref: cut(d.referrer, 2048),
        props: props || {},
      });
      if (started) timer = timer || setTimeout(flush, 0);
    });
    // The server takes at most 100 events per batch. A live batch names the actions this page holds armed,
    // so that its answer withdraws only among them; not while another one's answer may still arm more.
    var answering = 0;
    var take = (function (live) {
      var held = live && !answering && Object.keys(armed);
      return JSON.stringify({site: config.site, visitor: visitor(), session: session(), batch: rid(), events: queue.splice(0, 100), armed: held && held.length <= 100 ? held : void 0});
    });
    var flush = safe((function () {
      timer = 0;
      while (queue.length) send(take(1), 1);
    }));
    // On page hide a fetch may not finish; the browser delivers a beacon after the page is gone. Its answer
    // is never seen, so the batch stays kept and the next page resends it (the server applies it once).
    var beacon = safe(function () {
      learn();
      while (queue.length) {
        var body = take();
        keep(body);
        if (n.sendBeacon && n.sendBeacon(url, new Blob([body], {type: "text/plain"}))) flying[body] = 1;
      }
    });

    // Resolves to the answer (2xx), or 0 for a 4xx that can never succeed; rejects when worth a retry.
    var post = (function (body) {
      var A = w.AbortSignal;
      // A string body goes as text/plain, which needs no CORS preflight; keepalive lets the request outlive
      // the page; a request that takes over 5 s is dropped (and the batch resent later).
      return fetch(url, {method: "POST", body: body, keepalive: true, credentials: "omit", signal: A && A.timeout ? A.timeout(5000) : void 0}).then((function (r) {
        if (r.status > 499 || r.status == 429) throw 0;
        return r.ok ? r.json().catch(function () {
          return {};
        }) : 0;
      }));
    });
    // A batch is kept before it is sent and forgotten once the server took it (or refused it for good):
    // a page left while its batch is in flight loses nothing.
    var send = (function (body, live) {
      keep(body);
      flying[body] = 1;
      answering += live;
      post(body).then(safe((function (answer) {
        answering -= live;
        forget(body);
        if (!answer) return;
        if (live) arm(answer);
        if (stored) drain();
      })), function () {
        answering -= live;
        delete flying[body];
      }).catch(noop);
    });

    // Unsent batches wait in localStorage (at most 30, for 24 h) and are resent as they were, with the
    // same batch id, so the server applies each once. `flying`: this page's batches still in flight.
    // `stored`: how many batches were kept after this page's own, as last seen (other tabs share the list).
    var flying = {}, stored = 0;
    var kept = (function () {
      var now = Date.now(), list;
      try {
        list = JSON.parse(get("retry"));
      } catch (e) {}
      return (Array.isArray(list) ? list : []).filter((function (x) {
        return x && x.body && now - x.t < 864e5;
      }));
    });
    var keep = (function (body) {
      // A body over 64 kB is refused by keepalive and by the server alike.
      if (body.length < 65536) set("retry", JSON.stringify(kept().concat({t: Date.now(), body: body}).slice(-30)));
    });
    var forget = (function (body) {
      var list = kept(), left = list.filter((function (x) {
        return x.body != body;
      }));
      stored = left.length;
      if (left.length < list.length) set("retry", JSON.stringify(left));
    });
    var draining = 0;
    var drain = safe((function () {
      var first = leftBehind()[0];
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
    }));
    // Kept batches not in flight from this page: what earlier pages (or other tabs) left behind.
    var leftBehind = (function () {
      return kept().filter((function (x) {
        return !flying[x.body];
      }));
    });

    // Triggers: name -> function (fire, argument) that arms and returns a function that disarms.
    // The argument is what follows the first ":" in action.trigger ("delay:5" -> "5").
    // Time on page counts from the start of navigation, not from when this async script ran.
    var t0 = Date.now() - (w.performance ? performance.now() : 0), touch = "ontouchstart" in w || n.maxTouchPoints > 0;
    function on(target, type, f) {
      f = safe(f);
      target.addEventListener(type, f, {passive: true, capture: true});
      return function () {
        target.removeEventListener(type, f, {capture: true});
      };
    }
    function all(offs) {
      return function () {
        offs.forEach(function (off) {
          off();
        });
      };
    }
    function later(f, ms) {
      var id = setTimeout(f, Math.max(0, ms));
      return function () {
        clearTimeout(id);
      };
    }
    function scrolled() {
      var range = d.documentElement.scrollHeight - innerHeight;
      return range > 0 ? (scrollY / range) * 100 : 100;
    }
    var triggers = {
      now: function (fire) {
        fire();
      },
      delay: function (fire, s) {
        return later(fire, s * 1e3 - (Date.now() - t0));
      },
      scroll: function (fire, pct) {
        function check() {
          if (scrolled() >= +pct) fire();
        }
        var off = on(w, "scroll", check);
        check();
        return off;
      },
      idle: function (fire, s) {
        var off = noop, offs;
        function reset() {
          off();
          off = later(fire, s * 1e3);
        }
        offs = ["pointermove", "pointerdown", "keydown", "scroll", "touchstart"].map(function (type) {
          return on(w, type, reset);
        });
        reset();
        return all(offs.concat(function () {
          off();
        }));
      },
      click: function (fire, selector) {
        return on(d, "click", function (e) {
          if (e.target.closest && e.target.closest(selector)) fire();
        });
      },
      exit_intent: exitIntent,
    };
    // Exit intent, never in the first seconds on a page. Desktop: the pointer leaves through the top edge
    // moving up. Touch: a fast scroll up after reading down, the back button, or coming back to the tab.
    function exitIntent(fire) {
      var lastY = 1e9, top = 0, prev = scrollY, prevT = Date.now(), away = 0, trapped = 0;
      function go() {
        if (Date.now() - t0 > 2e3) fire();
      }
      if (!touch)
        return all([
          on(d, "mousemove", function (e) {
            lastY = e.clientY;
          }),
          on(d, "mouseout", function (e) {
            if (!e.relatedTarget && e.clientY <= 0 && e.clientY < lastY) go();
            lastY = e.clientY;
          }),
        ]);
      // The back button, on a page reached from outside the shop (where "back" means leaving): one extra
      // history entry that the first "back" consumes; the next "back" leaves as usual.
      if (history.state && history.state.storetag) trapped = 1;
      else if (history.pushState && d.referrer.indexOf(location.origin + "/") != 0) {
        history.pushState({storetag: 1}, "");
        trapped = 1;
      }
      var offs = [
        on(w, "popstate", function () {
          if (trapped) {
            trapped = 0;
            go();
          }
        }),
        on(w, "scroll", function () {
          var y = scrollY, t = Date.now();
          top = Math.max(top, y);
          if (top > innerHeight && prev - y > 0.6 * (t - prevT) + 60) go();
          prev = y;
          prevT = t;
        }),
        on(d, "visibilitychange", function () {
          if (d.visibilityState == "hidden") away = 1;
          else if (away) go();
        }),
      ];
      return function () {
        all(offs)();
        // Withdrawn before it fired: take our history entry back out.
        if (trapped && history.state && history.state.storetag) history.back();
      };
    }
    var armed = {}, shown = {};
    // An answer arms its actions and drops the armed ones it withdraws ("*": all of them).
    var arm = (function (answer) {
      var actions = Array.isArray(answer.actions) ? answer.actions : [], out = answer.withdraw || [], id, i, a;
      for (i = 0; i < out.length; i++) {
        if (out[i] == "*") for (id in armed) disarm(id);
        else disarm(out[i]);
      }
      for (i = 0; i < actions.length; i++) {
        a = actions[i];
        if (!a || Date.now() > a.expires || shown[a.id]) continue;
        // Already armed with the same trigger: keep its timers and listeners, take the newer action.
        if (armed[a.id] && armed[a.id].a.trigger == a.trigger) armed[a.id].a = a;
        else {
          disarm(a.id);
          start(a);
        }
      }
    });
    function disarm(id) {
      var entry = armed[id];
      delete armed[id];
      if (entry) safe(entry.off)();
    }
    function start(a) {
      var parts = String(a.trigger).split(":"), t = triggers[parts[0]], entry = {a: a, off: noop};
      if (!t || !triggers.hasOwnProperty(parts[0])) return;
      armed[a.id] = entry;
      var off = safe(t)(safe(function () {
        if (armed[a.id] !== entry) return;
        disarm(a.id);
        if (Date.now() > entry.a.expires) return;
        shown[a.id] = 1;
        draw(entry.a);
      }), parts.slice(1).join(":"));
      if (typeof off == "function") entry.off = off;
    }

    // Renderer modules register window.__storetag_renderers[kind], then call window.__storetag_loaded(kind).
    var renderers = (w.__storetag_renderers = w.__storetag_renderers || {});
    // Renderers get the config, the visitor, a way to report events and one to have another renderer draw.
    var waiting = {}, ctx = {config: config, visitor: "", report: safe(enqueue), draw: draw};
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
        ctx.visitor = visitor();
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

    // The page API: storetag("track", type, props) and storetag.track(type, props), same for identify and
    // unsubscribe.
    var commands = {
      track: (function (type, props) {
        if (type && typeof type == "string") enqueue(type, props);
      }),
      identify: function (customer, opts) {
        if (customer != null && customer !== "") enqueue("identify", Object.assign({}, opts, {customer_id: String(customer)}));
      },
      // Turns this browser's web push off; the lazy push module does it.
      unsubscribe: function () {
        draw({kind: "push_prompt", unsubscribe: 1});
      },
    };
    var api = safe((function (name) {
      if (commands.hasOwnProperty(name)) commands[name].apply(null, [].slice.call(arguments, 1));
    }));
    api.track = safe(commands.track);
    api.identify = safe(commands.identify);
    api.unsubscribe = safe(commands.unsubscribe);
    var early = (w.storetag && w.storetag.q) || [];
    w.storetag = api;

    var meta = d.querySelector('meta[name="storetag:page"]'), page = {page_type: cut(meta && meta.content, 300), lang: cut(n.language, 300)};
    enqueue("page_view", page);
    for (var i = 0; i < early.length; i++) api.apply(null, early[i]);
    // The page view learns the page's title and recommendation slots once the document is parsed.
    var learned = 0;
    var learn = (function () {
      if (learned || d.readyState == "loading") return;
      learned = 1;
      page.title = cut(d.title, 300);
      page.slots = [].map.call(d.querySelectorAll("[data-storetag-slot]"), (function (e) {
        return e.getAttribute("data-storetag-slot");
      })).filter((function (s) {
        return /^[\w-]{1,40}$/.test(s);
      })).slice(0, 10);
    });
    // Nothing of the above touched storage, the cookie or the network: the tag starts in an idle moment
    // after the page has loaded, or 2 s after it ran if the load takes longer (once the document is
    // parsed). Then the page view goes out in one batch with the page's own first events (its
    // product_view), which the slots' lists depend on. Chromium: a first visit reads the cookie by the
    // asynchronous cookieStore where there is one.
    var booted = 0, fallback;
    var go = safe((function () {
      if (started) return;
      booted = 1;
      clearTimeout(fallback);
      visitor();
      learn();
      started = 1;
      flush();
      // Batches an earlier page left behind go out after this page's own; most pages have none.
      if (leftBehind().length) drain();
    }));
    var boot = safe((function () {
      var cs = w.cookieStore;
      if (booted) return;
      if (d.readyState == "loading") return d.addEventListener("DOMContentLoaded", boot);
      booted = 1;
      // A cookieStore that throws leaves it to the synchronous read.
      new Promise((function (done) {
        done(vid || storedId() || !cs ? 0 : cs.get("_stvid").then((function (c) {
          c = c && c.value;
          settle("", HEX.test(c) ? c : "");
        })));
      })).catch(noop).then(go);
    }));
    // The first idle moment usually comes after the load event (this async script holds it back); when it
    // comes before, the tag waits for the load event and the next idle moment. No load listener otherwise:
    // the task that fires the load event does the page's own work too.
    var idle = safe((function () {
      if (w.requestIdleCallback) requestIdleCallback(afterLoad, {timeout: 1e3});
      else setTimeout(afterLoad, 0);
    }));
    var afterLoad = safe((function () {
      if (d.readyState == "complete") boot();
      else w.addEventListener("load", idle);
    }));
    idle();
    fallback = setTimeout(boot, 2e3);

    w.addEventListener("pagehide", beacon);
    // Hidden before the tag started (the visitor switched tabs): it starts at once, so that the page view's
    // answer is there if the visitor comes back (a fetch with keepalive outlives the page, too).
    d.addEventListener("visibilitychange", function () {
      if (d.visibilityState == "hidden") started ? beacon() : go();
    });
  } catch (e) {}
})(__STORETAG_CONFIG__);
