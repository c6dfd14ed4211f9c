"""What every response carries for the browser's protection, and which proxy hops are trusted for the client
address (the key of every rate limit)."""
from __future__ import annotations

from collections.abc import Callable, Iterable

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

# Everything the pages use is served by the app itself: no inline script, no inline style, no CDN. `data:` is
# the empty favicon of base.html. frame-ancestors is the modern X-Frame-Options (kept for older browsers).
CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "font-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
# The courier app's page alone may also compile WebAssembly: the vendored barcode reader (zxing-wasm, where the
# phone's browser has no BarcodeDetector of its own). 'wasm-unsafe-eval' allows compiling WebAssembly and nothing
# else: eval() and inline script stay refused. The page sets this header itself; the middleware keeps it.
WEBASSEMBLY_CONTENT_SECURITY_POLICY = CONTENT_SECURITY_POLICY.replace(
    "script-src 'self'", "script-src 'self' 'wasm-unsafe-eval'", 1)

SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    # A tracking URL is a key to a shipment: other sites see our origin at most, never the path.
    "Referrer-Policy": "strict-origin-when-cross-origin",
}


def trust_proxies(app: Flask) -> None:
    """Take the client address (and scheme and port) from the last TRUST_PROXY_HOPS proxies' X-Forwarded-*
    headers. With 0 the peer address is the client, and a client's own X-Forwarded-For counts for nothing."""
    hops = int(app.config.get("TRUST_PROXY_HOPS", 0))
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_port=hops)


class AddSecurityHeaders:
    """WSGI middleware, the outermost layer: every response gets the headers it does not set itself, including
    those answered before Flask sees the request (a malformed Host) and those of other middleware."""

    def __init__(self, wsgi_app: Callable, headers: dict[str, str]) -> None:
        self.wsgi_app = wsgi_app
        self.headers = list(headers.items())

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        def start_with_headers(status: str, response_headers: list[tuple[str, str]], exc_info=None):
            present = {name.lower() for name, _ in response_headers}
            response_headers.extend((name, value) for name, value in self.headers if name.lower() not in present)
            return start_response(status, response_headers, exc_info)

        return self.wsgi_app(environ, start_with_headers)


def register_security_headers(app: Flask) -> None:
    """Wrap the app (with the middleware already around it) so that every response carries the headers."""
    headers = dict(SECURITY_HEADERS)
    if app.config.get("HSTS_HEADER"):
        headers["Strict-Transport-Security"] = app.config["HSTS_HEADER"]
    app.wsgi_app = AddSecurityHeaders(app.wsgi_app, headers)
