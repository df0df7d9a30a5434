// stockfeed's service worker: the app shell works offline after one visit. The index and its
// hashed assets (and the manifest and icons) are cached; live data (/api, /ws) never is: the
// page keeps the last quotes itself (src/lib/lastKnown.ts) and says they are the last known.
// A new build installs a new worker (this file changes with CACHE), which drops the old cache.

const CACHE = "stockfeed-shell-v1";
const EXTRAS = ["/manifest.webmanifest", "/icon.svg", "/icon-192.png", "/icon-512.png"];

/** The index and what it names under /assets/, cached together. */
async function cacheShell(cache, response) {
  const html = await response.clone().text();
  await cache.put("/", response);
  const assets = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
  await Promise.all(
    [...new Set(assets)].map(async (url) => {
      if (await cache.match(url)) return;
      const res = await fetch(url);
      if (res.ok) await cache.put(url, res);
    }),
  );
}

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      const index = await fetch("/", { cache: "no-cache" });
      if (index.ok) await cacheShell(cache, index);
      await Promise.all(EXTRAS.map((url) => cache.add(url).catch(() => undefined)));
      await self.skipWaiting();
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const key of await caches.keys()) if (key !== CACHE) await caches.delete(key);
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const req = event.request;
  if (req.method !== "GET") return;
  const url = new URL(req.url);
  if (url.origin !== self.location.origin || url.pathname.startsWith("/api/") || url.pathname.startsWith("/ws")) return;
  if (req.mode === "navigate") {
    // The network first (the index names the current build), the cached shell offline.
    event.respondWith(
      (async () => {
        try {
          const res = await fetch(req);
          if (res.ok && url.pathname === "/") {
            const cache = await caches.open(CACHE);
            event.waitUntil(cacheShell(cache, res.clone()).catch(() => undefined));
          }
          return res;
        } catch (err) {
          const shell = await caches.match("/");
          if (shell) return shell;
          throw err;
        }
      })(),
    );
    return;
  }
  // Hashed assets never change under their name: the cache first. The rest: the network
  // first, the cache when offline.
  const hashed = url.pathname.startsWith("/assets/");
  event.respondWith(
    (async () => {
      const cache = await caches.open(CACHE);
      if (hashed) {
        const hit = await cache.match(req);
        if (hit) return hit;
      }
      try {
        const res = await fetch(req);
        if (res.ok && (hashed || EXTRAS.includes(url.pathname))) await cache.put(req, res.clone());
        return res;
      } catch (err) {
        const hit = await cache.match(req);
        if (hit) return hit;
        throw err;
      }
    })(),
  );
});
