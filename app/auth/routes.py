import math
import time
from datetime import timedelta
from urllib.parse import urlsplit

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from app.auth import bp
from app.auth.forms import ChangePasswordForm, LoginForm
from app.auth.guard import (
    current_staff_session,
    forget_sign_in,
    json_without_csrf,
    remember_sign_in,
    staff_required,
    uses_staff_session,
)
from app.domain.roles import Permission, Role
from app.domain.timeutil import isoformat_z
from app.errors import NotFound, ValidationError, wants_html
from app.extensions import db, limiter
from app.services.staff.sessions import SessionLifetimes, find_live_session, live_sessions
from app.services.staff.sign_in import LockoutPolicy, end_own_session, sign_in, sign_out
from app.services.staff.users import change_own_password
from app.web.forms import answers_json, refused_on_page

BAD_CREDENTIALS = _l("Wrong username or password.")


# Where a courier lands after signing in: the courier app (every other staff page is closed to them).
COURIER_HOME = "/courier/"


def safe_next(target: str | None, role: str | None = None) -> str:
    """Only a local path: a `next` that names another host (or scheme) falls back to the role's home page, the
    dashboard, or for a courier the courier app. A courier's `next` must lie in the courier app or their account:
    any other staff page would only answer 403."""
    home = COURIER_HOME if role == Role.COURIER else url_for("admin.dashboard")
    if target:
        parts = urlsplit(target)
        if not parts.scheme and not parts.netloc and target.startswith("/") and not target.startswith("//") \
                and "\\" not in target and (role != Role.COURIER or _open_to_couriers(parts.path)):
            return target
    return home


def _open_to_couriers(path: str) -> bool:
    return path.startswith(COURIER_HOME) or path == url_for("auth.account")


def lockout_policy() -> LockoutPolicy:
    config = current_app.config
    window = timedelta(minutes=config["LOGIN_LOCK_MINUTES"])
    return LockoutPolicy(lock_after=config["LOGIN_LOCK_AFTER"], window=window, lock_for=window)


def session_lifetimes() -> SessionLifetimes:
    config = current_app.config
    return SessionLifetimes(default=timedelta(hours=config["SESSION_HOURS"]),
                            remembered=timedelta(days=config["SESSION_REMEMBER_DAYS"]))


def _failed_sign_in(response) -> bool:
    """What the per-address budget counts: wrong credentials (401) and attempts on a locked name (429), never
    a successful sign-in: a whole office behind one address signs in at shift start."""
    return response.status_code in (401, 429)


def _wait_message() -> str:
    """The per-address refusal, naming the wait, in the visitor's language."""
    current = limiter.current_limit
    seconds = max(1, math.ceil(current.reset_at - time.time())) if current else 60
    if seconds < 120:
        return ngettext("Too many failed sign-ins from your address: try again in %(num)d second.",
                        "Too many failed sign-ins from your address: try again in %(num)d seconds.", seconds)
    minutes = math.ceil(seconds / 60)
    return ngettext("Too many failed sign-ins from your address: try again in %(num)d minute.",
                    "Too many failed sign-ins from your address: try again in %(num)d minutes.", minutes)


@bp.route("/login", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_LOGIN"], methods=["POST"], deduct_when=_failed_sign_in,
               error_message=_wait_message)
@json_without_csrf
@uses_staff_session
def login():
    form = LoginForm.from_request()
    if request.method == "GET":
        if current_user.is_authenticated:
            return redirect(safe_next(request.args.get("next"), current_user.role))
        return render_template("auth/login.html", form=form, next=request.args.get("next", ""))
    try:
        form.validate_or_raise()
    except ValidationError as error:
        refused_on_page(error, form)
        return render_template("auth/login.html", form=form, next=request.form.get("next", "")), 400
    remember = bool(form.remember.data)
    outcome = sign_in(form.username.data, form.password.data, remember=remember, policy=lockout_policy(),
                      lifetimes=session_lifetimes(), client_address=request.remote_addr,
                      user_agent=request.user_agent.string)
    db.session.commit()  # a failure's counter and audit row are kept too
    if outcome.user is None:
        # Locked or not, known or not: the same words; only a locked name gets 429 and when to come back.
        status, headers = (429, {"Retry-After": str(outcome.retry_after)}) if outcome.locked_until else (401, {})
        if request.is_json:
            return jsonify({"error": str(BAD_CREDENTIALS)}), status, headers
        flash(str(BAD_CREDENTIALS), "error")
        return render_template("auth/login.html", form=form, next=request.form.get("next", "")), status, headers
    remember_sign_in(outcome.user, outcome.session, outcome.token, keep=remember)
    if request.is_json:
        return jsonify({"username": outcome.user.username, "role": outcome.user.role,
                        "csrf_token": generate_csrf(), "expires_at": isoformat_z(outcome.session.expires_at)})
    return redirect(safe_next(request.form.get("next"), outcome.user.role))


@bp.post("/logout")
@uses_staff_session
def logout():
    """Ends the session. JSON for API clients (a JSON body, or an Accept that prefers JSON, as curl's
    `-H 'Accept: application/json'` with no body); the sign-in page for the browser's form."""
    record = current_staff_session()
    if record is not None:
        sign_out(current_user, record)
        db.session.commit()
    forget_sign_in()
    if answers_json():
        return jsonify({"logged_out": True})
    flash(gettext("You are signed out."), "info")
    return redirect(url_for("auth.login"))


@bp.get("/account")
@staff_required(Permission.MANAGE_OWN_ACCOUNT)
def account():
    sessions = live_sessions(current_user.id)
    this = current_staff_session()
    if not wants_html():
        return jsonify(_account_to_dict(sessions, this.id if this else None))
    return _account_page(ChangePasswordForm(formdata=None), sessions)


@bp.post("/account/password")
@staff_required(Permission.MANAGE_OWN_ACCOUNT)
def change_password():
    form = ChangePasswordForm.from_request()
    this = current_staff_session()
    try:
        form.validate_or_raise()
        ended = change_own_password(current_user, form.current_password.data, form.new_password.data,
                                    keep_session_id=this.id if this else None)
    except ValidationError as error:
        refused_on_page(error, form)
        return _account_page(form, live_sessions(current_user.id), 400)
    db.session.commit()
    if request.is_json:
        return jsonify({"password_changed": True, "sessions_ended": ended})
    flash(gettext("Your password is changed.") + (" " + gettext("%(count)s other session(s) were signed out.",
                                                                 count=ended) if ended else ""), "success")
    return redirect(url_for("auth.account"))


@bp.post("/account/sessions/<int:session_id>/end")
@staff_required(Permission.MANAGE_OWN_ACCOUNT)
def end_session_here(session_id: int):
    """End one of your own sessions (ending this one signs you out)."""
    record = find_live_session(current_user.id, session_id)
    if record is None:
        raise NotFound("No such active session of yours.")
    this = current_staff_session()
    is_this = this is not None and this.id == record.id
    end_own_session(current_user, record)
    db.session.commit()
    if is_this:
        forget_sign_in()
    if request.is_json:
        return jsonify({"ended": record.id, "signed_out": is_this})
    flash(gettext("You are signed out.") if is_this else gettext("That session is ended."), "info")
    return redirect(url_for("auth.login" if is_this else "auth.account"))


def _account_to_dict(sessions, this_id: int | None) -> dict:
    return {"username": current_user.username, "role": current_user.role, "sessions": [
        {"id": s.id, "created_at": isoformat_z(s.created_at), "last_seen_at": isoformat_z(s.last_seen_at),
         "expires_at": isoformat_z(s.expires_at), "client_address": s.client_address,
         "user_agent": s.user_agent, "current": s.id == this_id} for s in sessions]}


def _account_page(form: ChangePasswordForm, sessions, status_code: int = 200):
    this = current_staff_session()
    page = render_template("auth/account.html", form=form, sessions=sessions, this_id=this.id if this else None)
    return page, status_code
