/* Storetag renderer for actions of kind "push_prompt": the soft prompt for web push, drawn by the pop-up
   renderer, and the subscription that follows a click on its "allow" button ([data-storetag-cta]). The
   browser's permission dialog is only ever asked from that click: browsers refuse or hush it otherwise.
   The core also sends it {unsubscribe: 1} for the page's storetag("unsubscribe").
   Handshake: set window.__storetag_renderers.push_prompt, then call window.__storetag_loaded("push_prompt"). */
(function () {
  "use strict";
  try {
    var w = window, n = navigator, K = "storetag.push", DAY = 864e5;
    var renderers = (w.__storetag_renderers = w.__storetag_renderers || {});

    function noop() {}
    function safe(f) {
      return function () {
        try {
          return f.apply(this, arguments);
        } catch (e) {}
      };
    }
    // What this browser said: "denied", "unsupported", or the time of the last "not now".
    function get() {
      try {
        return localStorage.getItem(K) || "";
      } catch (e) {
        return "";
      }
    }
    function set(value) {
      try {
        localStorage.setItem(K, value);
      } catch (e) {}
    }
    // Reported once: the server records it and never sends the prompt again.
    function refuse(ctx, reason) {
      if (get() != reason) ctx.report("push_denied", {reason: reason});
      set(reason);
    }
    // The VAPID key as bytes: every browser takes those, not all take the base64url text.
    function bytes(text) {
      var s = atob(text.replace(/-/g, "+").replace(/_/g, "/")), a = new Uint8Array(s.length), i;
      for (i = 0; i < s.length; i++) a[i] = s.charCodeAt(i);
      return a;
    }
    // A worker registered for the first time must be active before the push manager subscribes.
    function active(reg) {
      var sw = reg.installing || reg.waiting;
      return reg.active || !sw
        ? reg
        : new Promise(function (done) {
            sw.addEventListener("statechange", function () {
              if (sw.state == "activated") done(reg);
            });
          });
    }
    function subscribe(ctx) {
      var c = ctx.config;
      return n.serviceWorker
        .register(c.push_worker)
        .then(active)
        .then(function (reg) {
          return reg.pushManager.subscribe({userVisibleOnly: true, applicationServerKey: bytes(c.vapid_public_key)});
        })
        .then(function (sub) {
          // text/plain needs no CORS preflight.
          var body = JSON.stringify({site: c.site, visitor: ctx.visitor, subscription: sub.toJSON()});
          return fetch(c.api + "/v1/push/subscriptions", {method: "POST", body: body, headers: {"Content-Type": "text/plain"}, credentials: "omit"});
        })
        .then(function (r) {
          if (r.ok) ctx.report("push_subscribed");
        });
    }
    // Runs in the click itself, so the browser sees the visitor's gesture.
    function allow(ctx) {
      Promise.resolve(Notification.requestPermission())
        .then(function (answer) {
          if (answer == "granted") return subscribe(ctx);
          if (answer == "denied") refuse(ctx, "denied");
          // The browser's dialog dismissed: as "not now".
          else set(Date.now());
        })
        .catch(noop);
    }

    // storetag("unsubscribe"): the browser's subscription ends, and the server forgets it.
    function unsubscribe(ctx) {
      var c = ctx.config, body;
      n.serviceWorker
        .getRegistration(c.push_worker)
        .then(function (reg) {
          return reg && reg.pushManager.getSubscription();
        })
        .then(function (sub) {
          if (!sub) return;
          body = JSON.stringify({site: c.site, visitor: ctx.visitor, endpoint: sub.endpoint});
          // Should the DELETE fail, the push service answers 410 for the ended subscription and the server
          // drops it then.
          return sub.unsubscribe().then(function () {
            ctx.report("push_unsubscribed");
            return fetch(c.api + "/v1/push/subscriptions", {method: "DELETE", body: body, headers: {"Content-Type": "text/plain"}, credentials: "omit"});
          });
        })
        .catch(noop);
    }

    renderers.push_prompt = renderers.push_prompt || safe(function (action, ctx) {
      var said = get();
      if (action.unsubscribe) return "serviceWorker" in n && unsubscribe(ctx);
      if (!("serviceWorker" in n && w.PushManager && w.Notification)) return refuse(ctx, "unsupported");
      if (Notification.permission == "denied") return refuse(ctx, "denied");
      // "Not now" holds for a day in this browser whatever the rule says; the rule's cooldown may add more.
      if (!ctx.config.vapid_public_key || Date.now() - said < DAY) return;
      ctx.draw(Object.assign({}, action, {
        kind: "popup",
        on: function (type, target) {
          if (type == "action_closed") set(Date.now());
          if (type == "action_clicked" && target.closest("[data-storetag-cta]")) allow(ctx);
        },
      }));
    });
    if (w.__storetag_loaded) w.__storetag_loaded("push_prompt");
  } catch (e) {}
})();
