"""The request being served, as plain values: its id, the client's address, method and path.

Set by the web layer at the start of every request and cleared at its end; read by log lines and by anything
that records who did what (an audit trail) without importing Flask request objects. Outside a request (the
outbox worker thread, CLI commands) every value is None. Context variables, so each thread (and each greenlet
under gevent) sees only its own request.
"""
from __future__ import annotations

import re
import uuid
from contextvars import ContextVar, Token
from dataclasses import dataclass

from app.observability.logs import mask_contacts

REQUEST_ID_HEADER = "X-Request-ID"
REQUEST_ID_MAX_LENGTH = 64  # the audit trail keeps it in a String(64)
# What a load balancer or a client may hand us as a request id: it ends up in every log line of the request and
# in a response header, so only characters that cannot break either (no spaces, quotes, control characters, no
# JSON or CRLF tricks) and no '@' (an email); an id that still looks like contact data (a mobile number) to the
# log masker is replaced too, so the id a log line shows is always the one the client got back.
_SANE_REQUEST_ID = re.compile(rf"[A-Za-z0-9._-]{{1,{REQUEST_ID_MAX_LENGTH}}}")


@dataclass(frozen=True)
class RequestInfo:
    request_id: str
    client_address: str | None
    method: str
    path: str


_current: ContextVar[RequestInfo | None] = ContextVar("waybill_request", default=None)


def _loggable(request_id: str) -> bool:
    return mask_contacts(request_id) == request_id


def request_id_from_header(value: str | None) -> str:
    """The id the load balancer sent when it looks sane (bounded, safe characters, nothing the log masker would
    hide), else a new one (32 hex digits, never a run of digits the masker would take for a phone number)."""
    if value and _SANE_REQUEST_ID.fullmatch(value) and _loggable(value):
        return value
    while True:
        generated = uuid.uuid4().hex
        if _loggable(generated):
            return generated


def bind_request(info: RequestInfo) -> Token:
    return _current.set(info)


def unbind_request(token: Token) -> None:
    _current.reset(token)


def current_request() -> RequestInfo | None:
    return _current.get()


def current_request_id() -> str | None:
    info = _current.get()
    return info.request_id if info else None


def current_client_address() -> str | None:
    info = _current.get()
    return info.client_address if info else None
