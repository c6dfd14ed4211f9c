"""Who and where the current request comes from, for code below the blueprints (audit rows, log lines).

A neutral module: services call these functions instead of importing Flask's request objects; outside a request
(CLI commands, the outbox worker) they answer None.
"""
from __future__ import annotations

from flask import g, has_request_context, request


def current_request_id() -> str | None:
    if not has_request_context():
        return None
    return getattr(g, "request_id", None)


def current_client_address() -> str | None:
    if not has_request_context():
        return None
    return request.remote_addr
