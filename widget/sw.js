/* Storetag service worker: shows the web pushes the server sends and reports clicks on them.
   A worker must come from the shop's own origin, so the shop hosts a one-line file at its root,
   importScripts("https://API/sw.js"), and this runs inside it. Nothing here may throw: a worker that fails
   to evaluate is not installed, and a push that shows no notification gets the browser's generic one. */
(function () {
  "use strict";
  function noop() {}
  function rid() {
    var a = crypto.getRandomValues(new Uint8Array(16)), s = "", i;
    for (i = 0; i < 16; i++) s += (a[i] | 256).toString(16).slice(1);
    return s;
  }
  // Resolved against the shop; anything but http(s) (javascript:, data:) is never opened.
  function web(url) {
    try {
      url = new URL(url, self.location.href);
      return /^https?:$/.test(url.protocol) ? url.href : "";
    } catch (e) {
      return "";
    }
  }
  // The worker has no access to the page's storage: the payload says where and for whom to report.
  function report(n, action) {
    if (!web(n.api)) return;
    var event = {type: "push_clicked", ts: Date.now(), props: {push: n.push, rule: n.rule || "", action: action}};
    var body = JSON.stringify({site: n.site, visitor: n.visitor, session: rid(), batch: rid(), events: [event]});
    return fetch(n.api + "/v1/events", {method: "POST", body: body, headers: {"Content-Type": "text/plain"}, keepalive: true, credentials: "omit"}).catch(noop);
  }
  function open(url) {
    if (!url) return;
    return self.clients.matchAll({type: "window", includeUncontrolled: true}).then(function (list) {
      for (var i = 0; i < list.length; i++) if (list[i].url == url && list[i].focus) return list[i].focus();
      return self.clients.openWindow(url);
    });
  }

  // A newer sw.js takes over at once: it keeps no caches and handles no fetches.
  self.addEventListener("install", function () {
    self.skipWaiting();
  });
  self.addEventListener("push", function (e) {
    try {
      var n = e.data.json();
      e.waitUntil(
        self.registration
          .showNotification(String(n.title), {
            body: n.body || "",
            icon: web(n.icon) || undefined,
            image: web(n.image) || undefined,
            data: n,
            actions: (n.buttons || []).map(function (b) {
              return {action: b.action, title: b.title};
            }),
          })
          .catch(noop)
      );
    } catch (x) {}
  });
  self.addEventListener("notificationclick", function (e) {
    try {
      var n = e.notification.data || {}, action = e.action || "";
      var button = (n.buttons || []).filter(function (b) {
        return b.action == action;
      })[0];
      e.notification.close();
      e.waitUntil(Promise.all([open(web((button && button.url) || n.url)), report(n, action)]).catch(noop));
    } catch (x) {}
  });
})();
