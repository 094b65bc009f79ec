// Service worker: the app shell works offline and the last live snapshot stays readable.
// Static files: cache first (refreshed in the background). /api/snapshot: network first,
// the last good answer cached (marked X-JTS-Offline when served from cache). Other API
// calls and the WebSocket always go to the network.
const SHELL = "jts-shell-v1", SNAP = "jts-snapshot";
const FILES = ["/", "/static/app.js", "/static/i18n.js", "/static/charts.js", "/static/style.css",
  "/manifest.webmanifest", "/static/icon.svg", "/static/icon-192.png", "/static/icon-512.png"];

self.addEventListener("install", (e) => {
  e.waitUntil(caches.open(SHELL).then((c) => c.addAll(FILES)).then(() => self.skipWaiting()));
});
self.addEventListener("activate", (e) => {
  e.waitUntil(caches.keys().then((keys) => Promise.all(keys.filter((k) => k !== SHELL && k !== SNAP)
    .map((k) => caches.delete(k)))).then(() => self.clients.claim()));
});

function offline(resp) {
  const h = new Headers(resp.headers); h.set("X-JTS-Offline", "1");
  return resp.blob().then((b) => new Response(b, { status: resp.status, headers: h }));
}

self.addEventListener("fetch", (e) => {
  const url = new URL(e.request.url);
  if (e.request.method !== "GET" || url.origin !== location.origin) return;
  if (url.pathname === "/api/snapshot") {
    e.respondWith(fetch(e.request).then((r) => {
      if (r.ok) { const copy = r.clone(); caches.open(SNAP).then((c) => c.put("/api/snapshot", copy)); }
      return r;
    }).catch(() => caches.open(SNAP).then((c) => c.match("/api/snapshot"))
      .then((r) => (r ? offline(r) : Response.error()))));
    return;
  }
  if (url.pathname === "/api/session") {
    e.respondWith(fetch(e.request).catch(() => caches.open(SNAP).then((c) => c.match("/api/snapshot"))
      .then((r) => (r ? new Response("{}", { status: 503, headers: { "X-JTS-Offline": "1" } }) : Response.error()))));
    return;
  }
  if (url.pathname.startsWith("/api/") || url.pathname === "/ws") return;
  e.respondWith(caches.open(SHELL).then((c) => c.match(e.request).then((hit) => {
    const net = fetch(e.request).then((r) => { if (r.ok) c.put(e.request, r.clone()); return r; });
    return hit ? (net.catch(() => hit), hit) : net;
  })));
});
