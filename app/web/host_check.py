"""A malformed Host header is answered with a plain 400 before the app sees the request.

Werkzeug refuses to bind the URL map to a host it cannot IDNA-encode (a label longer than 63 characters, an
empty label): such a request has no URL adapter, so even its error page cannot be built. This check runs first
and answers in plain text, without a template, a traceback or a log line (the access log has the request).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from werkzeug.sansio.utils import host_is_trusted
from werkzeug.wrappers import Response

BAD_HOST = "Bad Request: the Host header is not a valid host name.\n"


def malformed_host(value: str | None) -> bool:
    """True for a Host header Werkzeug could not route by; an absent or empty one is fine (HTTP/1.0 clients
    send none, and then the server's own name is used)."""
    if not value:
        return False
    if not host_is_trusted(value):  # with no trusted list: only the characters and the port are checked
        return True
    try:
        value.lower().partition(":")[0].encode("idna")  # what Werkzeug does when it binds the URL map
    except UnicodeError:
        return True
    return False


class RefuseMalformedHost:
    """WSGI middleware: the wrapped app never sees a request whose Host header is malformed."""

    def __init__(self, wsgi_app: Callable) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if malformed_host(environ.get("HTTP_HOST")):
            return Response(BAD_HOST, status=400, mimetype="text/plain")(environ, start_response)
        return self.wsgi_app(environ, start_response)
