"""Domain errors, and the one place that turns any error into an HTTP answer (JSON or HTML)."""
from __future__ import annotations

import logging
import traceback

from flask import Flask, jsonify, render_template, request
from flask_babel import gettext
from flask_wtf.csrf import CSRFError
from werkzeug.exceptions import HTTPException

from app.extensions import db

log = logging.getLogger(__name__)


class DomainError(Exception):
    status_code = 400
    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None, **extra: object) -> None:
        super().__init__(message or self.default_message)
        self.message = message or self.default_message
        self.extra = extra

    def to_dict(self) -> dict:
        return {"error": self.message, **self.extra}

    def response_headers(self) -> dict[str, str]:
        return {}


class ValidationError(DomainError):
    status_code = 400
    default_message = "Some fields are not valid."

    def __init__(self, message: str | None = None, fields: dict[str, str] | None = None) -> None:
        super().__init__(message, fields=fields or {})
        self.fields = fields or {}


class Unprocessable(ValidationError):
    """Well-formed, and refused by a business rule all the same (a destination the network does not serve,
    cash on delivery where it is not offered): 422, with `fields` naming each field and why."""

    status_code = 422
    default_message = "The request is well-formed but cannot be accepted."


class NotFound(DomainError):
    status_code = 404
    default_message = "Not found."


class InvalidTransition(DomainError):
    status_code = 409

    def __init__(self, current: str, requested: str, allowed: list[str]) -> None:
        if allowed:
            message = (f"A shipment that is {current} cannot become {requested}; "
                       f"allowed next statuses: {', '.join(allowed)}.")
        else:
            message = f"A shipment that is {current} is final and cannot change any more."
        super().__init__(message, current_status=current, allowed=allowed)


class Conflict(DomainError):
    status_code = 409
    default_message = "The request conflicts with the current state."


class StoreUnavailable(DomainError):
    """The file store (filesystem or S3) could not be reached or refused to keep a file."""

    status_code = 503
    default_message = "The file store cannot be reached right now; nothing was recorded. Please try again."


class StreamsUnavailable(DomainError):
    """This process serves no event streams (SSE_STREAMS is off, or it serves SSE_MAX_STREAMS already): the page
    keeps polling instead."""

    status_code = 503
    default_message = "Live updates are not served here right now; the page checks for news by itself."

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": "30"}


class ProofRefused(DomainError):
    """A visitor's proof (such as the mobile's last 4 digits) was wrong."""

    status_code = 403
    default_message = "That does not match."


class TooManyAttempts(DomainError):
    status_code = 429
    default_message = "Too many attempts; please try again later."

    def __init__(self, message: str | None = None, retry_after: int = 60) -> None:
        super().__init__(message, retry_after=retry_after)
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


def wants_html() -> bool:
    """True when the client prefers an HTML page over JSON (browsers do; curl and API clients do not)."""
    best = request.accept_mimetypes.best_match(["application/json", "text/html"])
    return best == "text/html" and (
        request.accept_mimetypes["text/html"] > request.accept_mimetypes["application/json"]
    )


def error_response(status: int, payload: dict, headers: dict | None = None):
    if wants_html():
        body = render_template("errors/error.html", status=status, message=payload.get("error"),
                               fields=payload.get("fields"))
        return body, status, headers or {}
    return jsonify(payload), status, headers or {}


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(DomainError)
    def handle_domain_error(error: DomainError):
        db.session.rollback()
        return error_response(error.status_code, error.to_dict(), error.response_headers())

    @app.errorhandler(CSRFError)
    def handle_csrf_error(error: CSRFError):
        db.session.rollback()
        # Said in the visitor's language (flask-wtf's own reasons are English only); "CSRF" stays in the English
        # text for API clients and logs.
        return error_response(400, {"error": gettext(
            "The form's security check (CSRF) failed: the page is too old, or the form did not come from it. "
            "Reload the page and send it again.")})

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        db.session.rollback()
        headers = dict(error.get_headers()) if error.code == 405 else {}
        headers.pop("Content-Type", None)
        return error_response(error.code or 500, {"error": error.description}, headers)

    @app.errorhandler(Exception)
    def handle_unexpected_error(error: Exception):
        db.session.rollback()
        log.error("Unhandled error in %s %s\n%s", request.method, request.endpoint or "(no route)",
                  describe_without_data(error))
        return error_response(500, {"error": "Internal server error."})


def describe_without_data(error: BaseException) -> str:
    """Where an error happened and what kind it was, with none of the data it carries: exception messages
    (and so the default traceback) can hold request data, such as a database error quoting the failing row with
    its email and mobile. Only code locations and exception class names, for each exception in the chain."""
    parts = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        kind = type(current)
        frames = "".join(traceback.format_tb(current.__traceback__))
        parts.append(f"Traceback (most recent call last):\n{frames}{kind.__module__}.{kind.__qualname__}")
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return "\n\nwhich led to:\n".join(reversed(parts))
