"""A request body that cannot be read is a 400 with one warning line, never a 500 with a traceback.

The server decodes a chunked body while the app reads it, so a malformed one (`Transfer-Encoding: chunked` then
`ZZ\\r\\n`) fails inside whatever reads first: a view, the form parser, the CSRF check. Gunicorn raises its own
parse errors there, Werkzeug's development server an OSError. This middleware wraps `wsgi.input` so that any
such failure becomes one `UnreadableBody` (a 400, answered by the error handlers like any other), and asks the
server to close the connection: where the next request would start on it is unknown.
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from werkzeug.exceptions import BadRequest, HTTPException

log = logging.getLogger(__name__)

ERROR_MARK = "waybill.unreadable_body"


class UnreadableBody(BadRequest):
    description = "The request body could not be read: its transfer encoding is malformed or it was cut short."


def _server_body_errors() -> tuple[type[BaseException], ...]:
    """What the servers we run under raise for a body they cannot decode."""
    errors: list[type[BaseException]] = [OSError]
    try:
        from gunicorn.http.errors import ParseException
    except ImportError:  # a laptop without Gunicorn: Werkzeug's server raises OSError
        pass
    else:
        errors.append(ParseException)
    return tuple(errors)


class CheckedInput:
    """`wsgi.input` with every read failure turned into UnreadableBody, logged once per request."""

    def __init__(self, stream, environ: dict, errors: tuple[type[BaseException], ...]) -> None:
        self._stream = stream
        self._environ = environ
        self._errors = errors

    def _call(self, method: str, *args):
        try:
            return getattr(self._stream, method)(*args)
        except HTTPException:
            raise
        except self._errors as error:
            if not self._environ.get(ERROR_MARK):
                self._environ[ERROR_MARK] = True
                log.warning("Refused an unreadable request body (%s) of %s %s: answered 400",
                            type(error).__name__, self._environ.get("REQUEST_METHOD"),
                            self._environ.get("PATH_INFO"))  # masked by the log formatter, as every value
            raise UnreadableBody() from None

    def read(self, *args):
        return self._call("read", *args)

    def readline(self, *args):
        return self._call("readline", *args)

    def readlines(self, *args):
        return self._call("readlines", *args)

    def readinto(self, buffer) -> int:  # Werkzeug prefers it; Gunicorn's body offers only read
        if hasattr(self._stream, "readinto"):
            return self._call("readinto", buffer)
        data = self._call("read", len(buffer))
        buffer[:len(data)] = data
        return len(data)

    def __iter__(self):
        return self

    def __next__(self):
        line = self.readline()
        if not line:
            raise StopIteration
        return line

    def readable(self) -> bool:
        return True

    def __getattr__(self, name: str):  # anything else a server's stream offers, as it is
        return getattr(self._stream, name)

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class RefuseUnreadableBody:
    """WSGI middleware: wraps the request body; a response to a request whose body failed closes the
    connection (Connection: close)."""

    def __init__(self, wsgi_app: Callable) -> None:
        self.wsgi_app = wsgi_app
        self.errors = _server_body_errors()

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        stream = environ.get("wsgi.input")
        if stream is not None:
            environ["wsgi.input"] = CheckedInput(stream, environ, self.errors)

        def start(status: str, headers: list[tuple[str, str]], exc_info=None):
            if environ.get(ERROR_MARK):
                headers = [(name, value) for name, value in headers if name.lower() != "connection"]
                headers.append(("Connection", "close"))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)
