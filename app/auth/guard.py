"""Who may call what, decided before CSRF, in one before_request hook for the whole app."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import abort, current_app, g, jsonify, redirect, request, session, url_for
from flask_login import current_user

from app.domain.roles import roles_with
from app.errors import wants_html
from app.extensions import csrf, login_manager
from app.models import StaffSession, User
from app.services.staff.sessions import resolve_session

UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})


def staff_required(permission: str) -> Callable[[Callable], Callable]:
    """Mark a view as staff-only, for the roles that hold `permission` (app.domain.roles).

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


def one_click_without_csrf(view: Callable) -> Callable:
    """A public URL whose credential is the signed token in it (RFC 8058 one-click unsubscribe): a POST of
    `List-Unsubscribe=One-Click` needs no CSRF token, since mail providers send it with no cookie and the token
    is all it needs. Any other POST to the view is still checked."""
    view.one_click_without_csrf = True
    return view


def accepts_upload(max_bytes: int) -> Callable[[Callable], Callable]:
    """Let this view's requests be up to `max_bytes` (the app's MAX_CONTENT_LENGTH stays small for the rest).
    Applied in enforce_access, before the CSRF check reads the form."""
    def mark(view: Callable) -> Callable:
        view.max_content_length = max_bytes
        return view
    return mark


def uses_staff_session(view: Callable) -> Callable:
    """A view without declared roles that still needs to know who is signed in (sign-in, sign-out): it may look
    the session up. Every other public view never does (that costs the tracking and booking paths nothing)."""
    view.uses_staff_session = True
    return view


# The Flask session (a cookie signed with SECRET_KEY) carries the staff session's random token, and a display
# hint (name and role) so public pages can show the navigation without a database look-up.
SESSION_TOKEN_KEY = "sid"  # noqa: S105 - the key's name, not a secret
NAVIGATION_HINT_KEY = "staff"


def _view_reads_session() -> bool:
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    return getattr(view, "required_roles", None) is not None or getattr(view, "uses_staff_session", False)


def load_staff_user(_request) -> User | None:
    """Flask-Login's request loader: the signed-in user of this request's staff session, looked up in the
    database on staff routes only. A revoked, expired or unknown session is signed out at once."""
    if not _view_reads_session():
        return None
    token = session.get(SESSION_TOKEN_KEY)
    if not isinstance(token, str):
        return None
    found = resolve_session(token)
    if found is None:
        session.pop(SESSION_TOKEN_KEY, None)
        session.pop(NAVIGATION_HINT_KEY, None)
        return None
    user, record = found
    g.staff_session = record
    return user


def drop_legacy_remember_cookie() -> None:
    """Browsers may still hold Flask-Login's old remember-me cookie: it must not stand in for the session (nor
    stop the request loader from running), so Flask-Login is told to skip it and delete it in this response."""
    if current_app.config.get("REMEMBER_COOKIE_NAME", "remember_token") in request.cookies:
        session["_remember"] = "clear"


def current_staff_session() -> StaffSession | None:
    """This request's session record (after current_user was loaded on a staff route), or None."""
    return g.get("staff_session") if current_user.is_authenticated else None


def remember_sign_in(user: User, record: StaffSession, token: str, keep: bool) -> None:
    """Put a new session's token in a fresh cookie ("keep me signed in": the cookie outlives the browser), and
    make it this request's user."""
    session.clear()
    session[SESSION_TOKEN_KEY] = token
    session[NAVIGATION_HINT_KEY] = {"username": user.username, "role": user.role}
    session.permanent = keep
    g.staff_session = record
    login_manager._update_request_context_with_user(user)


def forget_sign_in() -> None:
    """Clear the cookie (logout, or this session ended): the rest of this request is anonymous too."""
    session.clear()
    g.pop("staff_session", None)
    login_manager._update_request_context_with_user()


@dataclass(frozen=True)
class NavigationHint:
    """Who the cookie says is signed in, for the navigation of public pages only: never an authorisation."""
    username: str
    role: str
    is_authenticated: bool = True


def navigation_user():
    """The user the navigation shows: the verified one on staff pages, the cookie's hint on public ones."""
    if _view_reads_session():
        return current_user
    hint = session.get(NAVIGATION_HINT_KEY)
    if session.get(SESSION_TOKEN_KEY) and isinstance(hint, dict) and isinstance(hint.get("username"), str):
        return NavigationHint(hint["username"], str(hint.get("role", "")))
    return current_user


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
        if g.get("authenticated_by_key"):  # an API key in a header: no cookie, so no cross-site forgery
            return None
        if getattr(view, "one_click_without_csrf", False) and request.form.get("List-Unsubscribe") == "One-Click":
            return None
        csrf.protect()
    return None
