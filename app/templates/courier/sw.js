/* The courier app's service worker (scope {{ page }}): it keeps the app's page and files so that the app opens
   without a connection. The stops and the waiting actions are kept by the page itself, in IndexedDB; requests
   that change anything (POST) always go to the network.

   - The page: network first (a fresh page and CSRF token whenever there is a connection), the kept copy offline.
   - Static files: from the kept copy (this version's), else the network, kept for next time (the barcode reader
     is kept on first use, by the phones that need it).
   A new version (another `VERSION`: a file changed) installs beside the old one and takes over at once. */
"use strict";

const VERSION = {{ version|tojson }};
const PAGE = {{ page|tojson }};
const STATIC_PREFIX = {{ static_prefix|tojson }};
const PRECACHE = {{ precache|tojson }};
const CACHE = "waybill-courier-" + VERSION;

self.addEventListener("install", (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(PRECACHE);
    await keepPage(cache);
    await self.skipWaiting();
  })());
});

self.addEventListener("activate", (event) => {
  event.waitUntil((async () => {
    const names = await caches.keys();
    await Promise.all(names.filter((name) => name.startsWith("waybill-courier-") && name !== CACHE)
      .map((name) => caches.delete(name)));
    await self.clients.claim();
  })());
});

/* The page as the signed-in courier sees it; a sign-in page (a redirect) is never kept in its place. */
async function keepPage(cache) {
  try {
    const response = await fetch(PAGE, { credentials: "same-origin", cache: "no-store" });
    if (isKeepable(response)) { await cache.put(PAGE, response); }
  } catch (error) { /* offline while installing: the page is kept on its next visit */ }
}

function isKeepable(response) {
  return response.ok && response.type === "basic" && !response.redirected;
}

async function pageFirstFromNetwork(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (isKeepable(response)) { await cache.put(PAGE, response.clone()); }
    if (response.status >= 500) { return (await cache.match(PAGE)) || response; }
    return response;
  } catch (error) {
    const kept = await cache.match(PAGE);
    if (kept) { return kept; }
    throw error;
  }
}

async function keptFileFirst(request) {
  const cache = await caches.open(CACHE);
  const kept = await cache.match(request, { ignoreSearch: true });
  if (kept) { return kept; }
  const response = await fetch(request);
  if (isKeepable(response)) { await cache.put(request, response.clone()); }
  return response;
}

self.addEventListener("fetch", (event) => {
  const request = event.request;
  if (request.method !== "GET") { return; }
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (url.pathname === PAGE) {
    event.respondWith(pageFirstFromNetwork(request));
  } else if (url.pathname.startsWith(STATIC_PREFIX)) {
    event.respondWith(keptFileFirst(request));
  }
});

/* The page asks for this after the courier signs out: the kept page names them and carries their session's
   token, so it goes. */
self.addEventListener("message", (event) => {
  if (event.data === "forget-page") {
    event.waitUntil(caches.open(CACHE).then((cache) => cache.delete(PAGE)));
  }
});
