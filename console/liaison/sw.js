// Service worker of the liaison page (scope /liaison/): keeps the app shell on the phone so the page
// opens without a network, and opens the call when a notification is tapped. It never touches /api/
// or /ws: data and commands go through the page (REST) and console/shared/conn.js (outbox, resume).
const CACHE = "xianghu-liaison-v3";
// Every module the page imports (liaison.js is the entry; the others are its views and state).
const SHELL = [
  "/liaison/", "/liaison/liaison.js", "/liaison/liaison.css", "/liaison/manifest.webmanifest",
  "/liaison/icon.svg", "/liaison/icon-maskable.svg",
  "/liaison/strings.js", "/liaison/state.js", "/liaison/sync.js", "/liaison/alerts.js", "/liaison/outbox.js",
  "/liaison/sheets.js", "/liaison/card.js", "/liaison/list.js", "/liaison/detail.js",
  "/shared/base.css", "/shared/i18n.js", "/shared/conn.js", "/shared/storage.js", "/shared/uuid.js",
  "/shared/dom.js", "/shared/format.js",
  "/vendor/msgpack/index.mjs",
];
const CACHED_PREFIXES = ["/liaison/", "/shared/", "/vendor/"];
const NETWORK_WAIT_MS = 4000; // a patchy 4G request that hangs longer falls back to the cached copy

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // One missing file must not keep the rest out of the cache.
    await Promise.all(SHELL.map((url) => cache.add(new Request(url, { cache: "reload" })).catch(() => undefined)));
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    for (const key of await caches.keys()) if (key.startsWith("xianghu-liaison-") && key !== CACHE) await caches.delete(key);
    await self.clients.claim();
  })());
});

function cacheable(url) {
  return url.origin === self.location.origin && CACHED_PREFIXES.some((p) => url.pathname.startsWith(p))
    && !url.pathname.startsWith("/liaison/sw.js");
}

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  const network = fetch(request).then((res) => {
    if (res.ok && res.type === "basic") cache.put(request, res.clone()).catch(() => undefined);
    return res;
  });
  try {
    return await Promise.race([
      network,
      new Promise((_, reject) => setTimeout(() => reject(new Error("slow network")), NETWORK_WAIT_MS)),
    ]);
  } catch (err) {
    const hit = await cache.match(request, { ignoreSearch: true });
    if (hit) return hit;
    return network; // nothing cached: wait for the network after all (or fail as the browser would)
  }
}

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (req.mode === "navigate" && url.origin === self.location.origin && url.pathname.startsWith("/liaison")) {
    event.respondWith(networkFirst(new Request("/liaison/", { credentials: "same-origin" })));
    return;
  }
  if (cacheable(url)) event.respondWith(networkFirst(req));
});

// The page lists what it actually loaded (e.g. the modules msgpack's index imports) to keep for offline.
self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type !== "cache" || !Array.isArray(data.urls)) return;
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    for (const raw of data.urls) {
      let url;
      try { url = new URL(raw, self.location.origin); } catch { continue; }
      if (!cacheable(url) || await cache.match(url.href, { ignoreSearch: true })) continue;
      await cache.add(url.href).catch(() => undefined);
    }
  })());
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const target = new URL((event.notification.data && event.notification.data.url) || "/liaison/", self.location.origin);
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const client of windows) {
      if (new URL(client.url).pathname.startsWith("/liaison/")) {
        client.postMessage({ type: "open", url: target.href });
        return client.focus();
      }
    }
    return self.clients.openWindow(target.href);
  })());
});
