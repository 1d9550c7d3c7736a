// Service worker of the liaison page (scope /liaison/): keeps the app shell on the phone so the page
// opens without a network; shows the hub's Web Push messages as notifications (lock-screen alerts) and
// acknowledges from a notification's 响应 button; opens the call when a notification is tapped. Otherwise it
// leaves /api/ and /ws alone: data and commands go through the page (REST) and console/shared/conn.js (outbox).
const CACHE = "xianghu-liaison-v5";
// What the worker must remember between its wake-ups (it is stopped when idle): the hub's clock offset.
const STATE_CACHE = "xianghu-state";
const STATE_URL = "/liaison/__sw-state";
// Every module the page imports (liaison.js is the entry; the others are its views and state).
const SHELL = [
  "/liaison/", "/liaison/liaison.js", "/liaison/liaison.css", "/liaison/manifest.webmanifest",
  "/liaison/icon.svg", "/liaison/icon-maskable.svg",
  "/liaison/strings.js", "/liaison/state.js", "/liaison/sync.js", "/liaison/alerts.js", "/liaison/outbox.js",
  "/liaison/sheets.js", "/liaison/card.js", "/liaison/list.js", "/liaison/detail.js", "/liaison/push.js",
  "/shared/base.css", "/shared/i18n.js", "/shared/conn.js", "/shared/storage.js", "/shared/uuid.js",
  "/shared/dom.js", "/shared/format.js", "/shared/evidence.js", "/shared/loadstate.js",
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

// Messages from the page: what it actually loaded (e.g. the modules msgpack's index imports) to keep for
// offline; the hub's clock offset it learnt; and a notification action replayed by the page (or a test).
self.addEventListener("message", (event) => {
  const data = event.data || {};
  if (data.type === "clock" && Number.isFinite(data.skew)) {
    event.waitUntil(saveState({ skew: data.skew }));
    return;
  }
  if (data.type === "notification-action") {
    event.waitUntil((async () => {
      const [shown] = await inTurn(() => self.registration.getNotifications({ tag: data.tag }));
      const result = shown ? await onNotificationAction(shown, data.action || "", Date.now())
        : { ok: false, error: "no such notification" };
      if (event.ports && event.ports[0]) event.ports[0].postMessage(result);
    })());
    return;
  }
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

// -- lock-screen alerts (Web Push) ----------------------------------------------------------------------

const ACK_REASONS = ["dispatched", "escalated", "nudged"];

// Chromium's getNotifications() deletes from its database every stored notification that the platform does not
// list as displayed yet, unless it was stored after the read began (platform_notification_context_impl.cc,
// DoReadAllNotificationDataForServiceWorkerRegistration): a read that falls between a showNotification() storing
// a notification and the platform displaying it loses that one for good (still on screen, but 响应 and every
// later read find nothing). So every show and every read of this origin's notifications takes its turn: one Web
// Lock, granted in the order asked, shared with the page (alerts.js showSystemNotification), held until the show
// or the read resolved. Without Web Locks the worker's own shows and reads still go through one promise chain.
const NOTIFICATIONS_LOCK = "xianghu-notifications";
let notificationTurns = Promise.resolve();

function inTurn(work) {
  if (self.navigator.locks) return self.navigator.locks.request(NOTIFICATIONS_LOCK, work);
  const done = notificationTurns.then(work);
  notificationTurns = done.catch(() => undefined);
  return done;
}

async function loadState() {
  try {
    const hit = await (await caches.open(STATE_CACHE)).match(STATE_URL);
    return hit ? await hit.json() : {};
  } catch {
    return {};
  }
}

async function saveState(patch) {
  const next = { ...(await loadState()), ...patch };
  const cache = await caches.open(STATE_CACHE);
  await cache.put(STATE_URL, new Response(JSON.stringify(next), { headers: { "Content-Type": "application/json" } }));
}

function uuid4() {
  if (self.crypto && typeof self.crypto.randomUUID === "function") return self.crypto.randomUUID();
  const b = self.crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** The notification of one hub message (dispatch/notify/webpush.py push_payload). */
function notificationOf(p) {
  const reason = p.reason || "";
  const canAck = !!(p.ack && p.assignment_id && ACK_REASONS.includes(reason));
  const escalated = reason === "escalated";
  return [p.title || "乡呼", {
    body: p.text || "",
    tag: `${p.call_id || "xianghu"}:${reason}`, // a repeat replaces the one before instead of piling up
    renotify: true,
    requireInteraction: escalated,
    icon: "/liaison/icon.svg", badge: "/liaison/icon.svg", lang: "zh-CN",
    vibrate: escalated ? [800, 200, 800, 200, 800, 200, 1200] : [500, 200, 500, 200, 900],
    data: { url: p.url || (p.call_id ? `/liaison/#/call/${p.call_id}` : "/liaison/"), call_id: p.call_id || null,
            assignment_id: p.assignment_id || null, reason, number: p.number || null, ack: canAck },
    actions: canAck ? [{ action: "ack", title: "响应" }] : [],
  }];
}

self.addEventListener("push", (event) => {
  let payload;
  try {
    payload = event.data ? event.data.json() : {};
  } catch {
    payload = { title: "乡呼", text: event.data ? event.data.text() : "" };
  }
  event.waitUntil((async () => {
    const [title, options] = notificationOf(payload);
    await inTurn(() => self.registration.showNotification(title, options));
    for (const client of await self.clients.matchAll({ type: "window", includeUncontrolled: true })) {
      client.postMessage({ type: "push", payload });
    }
  })());
});

/** Focus the liaison page on a URL (an open one is told; otherwise one is opened), optionally carrying an
 * acknowledgement for the page's own outbox to send (it keeps trying while the phone is offline). */
async function openPage(url, ack = null) {
  const target = new URL(url || "/liaison/", self.location.origin);
  const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
  for (const client of windows) {
    if (new URL(client.url).pathname.startsWith("/liaison/")) {
      client.postMessage({ type: "open", url: target.href, ack });
      return client.focus().catch(() => client); // focusing is allowed only while handling a tap
    }
  }
  if (ack) {
    target.searchParams.set("ack", ack.assignment_id);
    target.searchParams.set("cmd", ack.command_id);
    target.searchParams.set("at", String(ack.clicked_at));
  }
  return self.clients.openWindow(target.href).catch(() => null);
}

/** 响应 from the notification: sent at once with the session cookie, stamped with the tap's time on the hub's
 * clock; when that fails (offline, logged out, the hub down) the page takes it over with the same command id. */
async function acknowledgeFrom(data, clickedAt) {
  const { skew = 0 } = await loadState();
  const ack = { assignment_id: data.assignment_id, command_id: uuid4(), clicked_at: clickedAt };
  const actedAt = Math.round(clickedAt + skew);
  let res = null;
  try {
    res = await fetch(`/api/v1/assignments/${encodeURIComponent(data.assignment_id)}/acknowledge`, {
      method: "POST", credentials: "same-origin",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ command_id: ack.command_id, acted_at: actedAt }),
    });
  } catch { /* offline */ }
  const answer = res ? await res.json().catch(() => ({})) : {};
  if (res && res.ok) {
    await inTurn(async () => {
      for (const n of await self.registration.getNotifications()) {
        if (n.data && n.data.assignment_id === data.assignment_id) n.close();
      }
    });
    for (const client of await self.clients.matchAll({ type: "window", includeUncontrolled: true })) {
      client.postMessage({ type: "acked", assignment_id: data.assignment_id, command_id: ack.command_id });
    }
    return { ok: true, status: res.status, command_id: ack.command_id, acted_at: actedAt };
  }
  // Already answered (from the page, another phone) or no longer ours: show the call as it is now.
  const settled = res && res.status === 409 && answer.code === "illegal_transition";
  await openPage(data.url, settled ? null : ack);
  return { ok: false, status: res ? res.status : null, code: answer.code || null, handed_to_page: !settled,
           command_id: ack.command_id };
}

async function onNotificationAction(notification, action, clickedAt) {
  const data = notification.data || {};
  notification.close();
  if (action === "ack" && data.assignment_id) return acknowledgeFrom(data, clickedAt);
  await openPage(data.url);
  return { ok: true, opened: data.url || "/liaison/" };
}

self.addEventListener("notificationclick", (event) => {
  event.waitUntil(onNotificationAction(event.notification, event.action, Date.now()));
});
