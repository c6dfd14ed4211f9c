"""What every response carries for the browser's protection, and which proxy hops are trusted for the client
address (the key of every rate limit)."""
from __future__ import annotations

from flask import Flask
from flask.wrappers import Response
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


def register_security_headers(app: Flask) -> None:
    headers = dict(SECURITY_HEADERS)
    if app.config.get("HSTS_HEADER"):
        headers["Strict-Transport-Security"] = app.config["HSTS_HEADER"]

    @app.after_request
    def add_security_headers(response: Response) -> Response:
        for name, value in headers.items():
            response.headers.setdefault(name, value)
        return response
