"""Who may call what, decided before CSRF, in one before_request hook for the whole app."""
from __future__ import annotations

from collections.abc import Callable

from flask import abort, current_app, jsonify, redirect, request, url_for
from flask_login import current_user

from app.errors import wants_html
from app.extensions import csrf
from app.services.roles import roles_with

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def staff_required(permission: str) -> Callable[[Callable], Callable]:
    """Mark a view as staff-only, for the roles that hold `permission` (app.services.roles).

    Every staff route declares one (a test walks the URL map); the check itself runs in enforce_access.
    """
    if callable(permission):
        raise TypeError("staff_required needs a permission: @staff_required(Permission.VIEW_SHIPMENTS)")
    roles = roles_with(permission)

    def mark(view: Callable) -> Callable:
        view.required_roles = roles
        view.required_permission = permission
        return view
    return mark


def json_without_csrf(view: Callable) -> Callable:
    """A public JSON call that needs no CSRF token: browsers cannot send application/json cross-site
    without a CORS preflight, which this app never grants. Its form variant is still checked."""
    view.json_without_csrf = True
    return view


def accepts_upload(max_bytes: int) -> Callable[[Callable], Callable]:
    """Let this view's requests be up to `max_bytes` (the app's MAX_CONTENT_LENGTH stays small for the rest).
    Applied in enforce_access, before the CSRF check reads the form."""
    def mark(view: Callable) -> Callable:
        view.max_content_length = max_bytes
        return view
    return mark


def unauthenticated_response():
    if wants_html() and request.method == "GET":
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return jsonify({"error": "Log in first."}), 401


def enforce_access():
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    roles = getattr(view, "required_roles", None)
    if roles is not None:
        if not current_user.is_authenticated:
            return unauthenticated_response()
        if current_user.role not in roles:
            abort(403, "Your role may not do this.")
    if request.method in UNSAFE_METHODS:
        upload_limit = getattr(view, "max_content_length", None)
        if upload_limit is not None:
            request.max_content_length = upload_limit
        if getattr(view, "json_without_csrf", False) and request.is_json:
            return None
        csrf.protect()
    return None
