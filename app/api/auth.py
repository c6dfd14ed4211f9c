"""Bearer API keys on /api/v1: who the request is (the key's owner, with its role), decided before the role
check, CSRF and the rate limits. No session is read or written: a key is the whole of the credentials."""
from __future__ import annotations

import time

from flask import current_app, g, request
from flask.wrappers import Response

from app.api.problems import is_api_request
from app.errors import DomainError
from app.extensions import limiter, login_manager
from app.services.staff.api_keys import resolve_api_key

WWW_AUTHENTICATE = 'Bearer realm="waybill"'
KEY_HEADER_MAX = 512


class ApiKeyRefused(DomainError):
    status_code = 401
    default_message = "The API key is wrong, revoked or expired, or its account is deactivated."

    def response_headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": WWW_AUTHENTICATE}


def _api_view():
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return view if getattr(view, "api_key_auth", False) else None


def authenticate_api_request() -> None:
    """before_request (registered before the access check): on API routes, the Bearer key's owner becomes the
    request's user; no key, or a refused one, is a 401 with WWW-Authenticate."""
    if request.routing_exception is not None and is_api_request():
        # An unknown route or method under /api/v1: its problem answer, before the CSRF check could intervene.
        raise request.routing_exception
    if _api_view() is None:
        return
    scheme, _, secret = request.headers.get("Authorization", "").strip().partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not secret:
        raise ApiKeyRefused("Send an API key: Authorization: Bearer <key>.")
    found = resolve_api_key(secret) if len(secret) <= KEY_HEADER_MAX else None
    if found is None:
        raise ApiKeyRefused()
    user, record = found
    g.api_key = record
    # Read by the access check: a Bearer request carries no cookie, so there is nothing for CSRF to protect.
    g.authenticated_by_key = True
    login_manager._update_request_context_with_user(user)


def rate_limit_key() -> str:
    """The API's limits count per key (the client address for the few public routes)."""
    record = g.get("api_key")
    return f"api-key:{record.id}" if record is not None else f"api-ip:{request.remote_addr}"


def add_rate_limit_headers(response: Response) -> Response:
    """The IETF RateLimit-* fields (Flask-Limiter sends the X-RateLimit-* ones): limit, what is left, seconds to
    the reset, and the policy."""
    current = limiter.current_limit
    if current is None:
        return response
    item = current.limit
    response.headers["RateLimit-Limit"] = str(item.amount)
    response.headers["RateLimit-Remaining"] = str(max(current.remaining, 0))
    response.headers["RateLimit-Reset"] = str(max(int(current.reset_at - time.time()), 0))
    response.headers["RateLimit-Policy"] = f"{item.amount};w={item.get_expiry()}"
    return response
