"""Domain errors, and the one place that turns any error into an HTTP answer (JSON or HTML)."""
from __future__ import annotations

import logging

from flask import Flask, jsonify, render_template, request
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


class ValidationError(DomainError):
    status_code = 400
    default_message = "Some fields are not valid."

    def __init__(self, message: str | None = None, fields: dict[str, str] | None = None) -> None:
        super().__init__(message, fields=fields or {})
        self.fields = fields or {}


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
        return error_response(error.status_code, error.to_dict())

    @app.errorhandler(CSRFError)
    def handle_csrf_error(error: CSRFError):
        db.session.rollback()
        return error_response(400, {"error": f"CSRF check failed: {error.description}"})

    @app.errorhandler(HTTPException)
    def handle_http_error(error: HTTPException):
        db.session.rollback()
        headers = dict(error.get_headers()) if error.code == 405 else {}
        headers.pop("Content-Type", None)
        return error_response(error.code or 500, {"error": error.description}, headers)

    @app.errorhandler(Exception)
    def handle_unexpected_error(error: Exception):
        db.session.rollback()
        log.exception("Unhandled error on %s %s", request.method, request.path)
        return error_response(500, {"error": "Internal server error."})
