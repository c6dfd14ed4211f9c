"""RFC 9457 problem details: the one error shape of /api/v1 (application/problem+json).

Every error an API request can meet — a domain error, a refused key, a bad body, an unknown route, a rate
limit, an unexpected failure — is answered here as `{"type", "title", "status", "detail", "errors"?}`, with
any extra members the error carries (the allowed next statuses of a 409, for instance).
"""
from __future__ import annotations

import logging
from http import HTTPStatus

from flask import Blueprint, Flask, current_app, jsonify, request
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.domain.links import absolute_url
from app.errors import DomainError, ValidationError, describe_without_data
from app.extensions import db

log = logging.getLogger(__name__)
API_PREFIX = "/api/v1"
PROBLEM_MEDIA_TYPE = "application/problem+json"

# The problem types the API answers with, by status: their `type` is a link to their entry on /api/docs.
PROBLEM_TYPES: dict[int, tuple[str, str]] = {
    400: ("invalid-request", "The request is not valid: bad JSON, a wrong type, an unknown field or a field "
                             "that breaks a rule. `errors` names each field and what is wrong with it."),
    401: ("unauthenticated", "No API key, or a wrong, revoked or expired one, or its account is deactivated."),
    403: ("forbidden", "The key's account has a role that may not do this."),
    404: ("not-found", "No such shipment, or no such route."),
    405: ("method-not-allowed", "The route exists but not with this method."),
    409: ("conflict", "The request conflicts with the current state: a status change the shipment's state does "
                      "not allow (`allowed` lists the next statuses), a delivery that is not dead, or an "
                      "Idempotency-Key whose first request is still being processed (retry shortly)."),
    413: ("too-large", "The request body is larger than the API accepts."),
    415: ("unsupported-media-type", "Send the body as application/json."),
    422: ("unprocessable", "Well formed, but it cannot be done: the network does not serve the destination PIN code, "
                           "or not with cash on delivery or express (`errors` names the field), or the "
                           "Idempotency-Key was used with a different request in the last 24 hours."),
    429: ("rate-limited", "Too many requests with this key: wait for Retry-After seconds."),
    500: ("server-error", "Something failed on our side; the request changed nothing."),
}


def problem_type(status: int) -> str:
    slug = PROBLEM_TYPES.get(status, ("error", ""))[0]
    return absolute_url(current_app.config["PUBLIC_BASE_URL"], f"/api/docs#problem-{slug}")


def problem(status: int, detail: str, *, errors: dict[str, str] | None = None, headers: dict | None = None,
            **extra: object):
    """A problem details response."""
    body: dict[str, object] = {"type": problem_type(status), "title": _title(status), "status": status,
                               "detail": detail}
    if errors:
        body["errors"] = errors
    body.update(extra)
    response = jsonify(body)
    response.status_code = status
    response.mimetype = PROBLEM_MEDIA_TYPE
    for name, value in (headers or {}).items():
        response.headers[name] = value
    return response


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def from_domain_error(error: DomainError):
    """A domain error as a problem: its message is the detail, its fields the `errors`, its extras kept."""
    db.session.rollback()
    extra = {k: v for k, v in error.extra.items() if k != "fields"}
    errors = error.fields if isinstance(error, ValidationError) else None
    return problem(error.status_code, error.message, errors=errors or None, headers=error.response_headers(),
                   **extra)


def from_http_error(error: HTTPException):
    db.session.rollback()
    status = error.code or 500
    headers = {}
    if status == 405:
        headers = {k: v for k, v in error.get_headers() if k.lower() == "allow"}
    if status == 429:
        headers["Retry-After"] = str(_retry_after())
    detail = error.description if status != 429 else "Too many requests with this API key; slow down."
    return problem(status, str(detail), headers=headers)


def _retry_after() -> int:
    """Seconds until the breached limit resets (Flask-Limiter also sets Retry-After; this one is in the body)."""
    import time

    from app.extensions import limiter

    current = limiter.current_limit
    return max(int(current.reset_at - time.time()), 1) if current is not None else 1


def is_api_request() -> bool:
    return request.path == API_PREFIX or request.path.startswith(API_PREFIX + "/")


def register_problem_handlers(bp: Blueprint) -> None:
    """Problem details for every error of the blueprint's routes."""
    bp.register_error_handler(DomainError, from_domain_error)
    bp.register_error_handler(HTTPException, from_http_error)

    @bp.errorhandler(CSRFError)
    def csrf_refused(error: CSRFError):
        db.session.rollback()
        return problem(400, f"CSRF check failed: {error.description}")

    @bp.errorhandler(Exception)
    def unexpected(error: Exception):
        db.session.rollback()
        log.error("Unhandled error in %s %s\n%s", request.method, request.endpoint or "(no route)",
                  describe_without_data(error))
        return problem(500, "Internal server error.")


def register_routing_problems(app: Flask) -> None:
    """Problem details for unknown routes and wrong methods under /api/v1 too: those match no route, so the
    blueprint's own handlers never see them."""
    def routing_error(error: HTTPException):
        if is_api_request():
            return from_http_error(error)
        # Any other path: the app's own answer (JSON or HTML by Accept), as if this handler did not exist.
        return current_app.error_handler_spec[None][None][HTTPException](error)

    for code in (404, 405):
        app.register_error_handler(code, routing_error)
