"""Which proxy hops are trusted for the client address: the key of every rate limit."""
from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix


def trust_proxies(app: Flask) -> None:
    """Take the client address (and scheme and port) from the last TRUST_PROXY_HOPS proxies' X-Forwarded-*
    headers. With 0 the peer address is the client, and a client's own X-Forwarded-For counts for nothing."""
    hops = int(app.config.get("TRUST_PROXY_HOPS", 0))
    if hops > 0:
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_port=hops)
