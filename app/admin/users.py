"""Staff accounts from the browser and for API clients: /admin/users (admin only), routes of the admin blueprint.

HTML and JSON share the URLs: GET /admin/users → {"users": [...]}; POST /admin/users creates (201 / 400 with
`fields` / 409 taken), a courier with its vehicle, capacity, shift and shown name; POST /admin/users/<username>
changes any of role, active, password and a courier's details (200 / 400 / 404 / 409). Ending an account's
sessions and lifting its sign-in lock have their own POSTs, which answer JSON to a JSON body or to an Accept that
prefers JSON (a bodiless POST from curl). Deactivating and ending sessions ask a
browser to confirm first (app.admin.confirm; GET /admin/users/<username>/deactivate asks too).
"""
from __future__ import annotations

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from app.admin import bp
from app.admin.confirm import Question, confirm_first, confirmation_page, needs_confirmation
from app.admin.forms import VEHICLE_NAMES, NewUserForm, UserChangesForm
from app.auth.guard import current_staff_session, staff_required
from app.domain.roles import ROLE_DESCRIPTIONS, Permission, Role
from app.errors import DomainError, wants_html
from app.extensions import db
from app.services.field.couriers import profile_of, profiles_of
from app.services.staff.sessions import live_sessions
from app.services.staff.users import (
    create_user,
    end_sessions_of,
    get_user,
    list_users,
    lock_status,
    unlock_user,
    update_user,
)
from app.web.forms import answers_json, read_form, refused_on_page
from app.web.serializers import user_to_dict


@bp.get("/users")
@staff_required(Permission.MANAGE_STAFF)
def users():
    accounts = list_users()
    if not wants_html():
        profiles = profiles_of(accounts)
        return jsonify({"users": [user_to_dict(user, profiles.get(user.id)) for user in accounts]})
    return _list_page(NewUserForm(formdata=None), accounts)


@bp.post("/users")
@staff_required(Permission.MANAGE_STAFF)
def create_staff_account():
    form = NewUserForm.from_request()
    try:
        form.validate_or_raise()
        user = create_user(form.username.data, form.password.data, form.role.data, actor=current_user.username,
                           courier=form.courier_fields())
    except DomainError as error:
        problem = refused_on_page(error, form)
        return _list_page(form, list_users(), error.status_code, problem)
    db.session.commit()
    if request.is_json:
        location = url_for("admin.user_detail", username=user.username)
        return jsonify(user_to_dict(user, profile_of(user.id))), 201, {"Location": location}
    flash(gettext("Created %(role)s %(username)s.", role=user.role, username=user.username), "success")
    return redirect(url_for("admin.users"))


@bp.get("/users/<username>")
@staff_required(Permission.MANAGE_STAFF)
def user_detail(username: str):
    user = get_user(username)
    if not wants_html():
        return jsonify(user_to_dict(user, profile_of(user.id)))
    return _detail_page(user)


@bp.post("/users/<username>")
@staff_required(Permission.MANAGE_STAFF)
def change_staff_account(username: str):
    this = current_staff_session()
    try:
        changes = read_form(UserChangesForm).to_changes()
        if changes.active is False and needs_confirmation():
            return confirmation_page(_ask_deactivate(username))
        user = update_user(username, changes, actor=current_user.username,
                           bootstrap_admin=current_app.config.get("ADMIN_USERNAME"),
                           keep_session_id=this.id if this else None)
    except DomainError as error:
        return _refused(error, username)
    db.session.commit()
    if request.is_json:
        return jsonify(user_to_dict(user, profile_of(user.id)))
    flash(gettext("Saved the changes to %(username)s.", username=user.username), "success")
    return redirect(url_for("admin.user_detail", username=user.username))


@bp.get("/users/<username>/deactivate")
@staff_required(Permission.MANAGE_STAFF)
def confirm_deactivate_staff_account(username: str):
    """The deactivate button's question; its form POSTs to change_staff_account."""
    return confirmation_page(_ask_deactivate(username))


def _ask_deactivate(username: str) -> Question:
    user = get_user(username)
    return Question(heading=gettext("Deactivate %(username)s?", username=user.username),
                    question=gettext("Are you sure you want to deactivate %(username)s? The account is signed out "
                                     "at once and cannot sign in until reactivated.", username=user.username),
                    button=gettext("Deactivate"), back_url=url_for("admin.user_detail", username=user.username),
                    fields={"active": "false"}, action=url_for("admin.change_staff_account", username=user.username))


def _ask_end_sessions(username: str) -> Question:
    user = get_user(username)
    return Question(heading=gettext("End all sessions of %(username)s?", username=user.username),
                    question=gettext("Are you sure you want to end every session of %(username)s? They are signed "
                                     "out everywhere at once.", username=user.username),
                    button=gettext("End all sessions"), back_url=url_for("admin.user_detail", username=user.username))


@bp.route("/users/<username>/sessions/end", methods=["GET", "POST"])
@staff_required(Permission.MANAGE_STAFF)
@confirm_first(_ask_end_sessions)
def end_staff_sessions(username: str):
    """Sign an account out everywhere."""
    ended = end_sessions_of(username, actor=current_user.username)
    db.session.commit()
    if answers_json():
        return jsonify({"username": get_user(username).username, "sessions_ended": ended})
    flash(gettext("Ended %(count)s session(s) of %(username)s.", count=ended, username=username), "info")
    return redirect(url_for("admin.user_detail", username=username))


@bp.post("/users/<username>/unlock")
@staff_required(Permission.MANAGE_STAFF)
def unlock_staff_account(username: str):
    was_locked = unlock_user(username, actor=current_user.username)
    db.session.commit()
    if answers_json():
        return jsonify({"username": get_user(username).username, "was_locked": was_locked})
    flash(gettext("%(username)s may sign in again.", username=username) if was_locked
          else gettext("%(username)s was not locked.", username=username), "info")
    return redirect(url_for("admin.user_detail", username=username))


def _refused(error: DomainError, username: str):
    """JSON clients get the error as JSON; browsers the account's page again with the problem (same status)."""
    problem = refused_on_page(error)
    user = get_user(username)  # an unknown account is a 404 here too
    return _detail_page(user, error.status_code, problem)


def _list_page(form: NewUserForm, accounts, status_code: int = 200, problem: str | None = None):
    page = render_template("admin/users.html", form=form, users=accounts, locks=lock_status(),
                           roles=ROLE_DESCRIPTIONS, problem=problem, profiles=profiles_of(accounts),
                           vehicle_names=VEHICLE_NAMES)
    return page, status_code


def _courier_form(profile) -> UserChangesForm | None:
    """A courier's details, filled in from their profile (None for an account without one)."""
    if profile is None:
        return None
    return UserChangesForm(formdata=None, name=profile.name, vehicle=profile.vehicle, capacity=profile.capacity,
                           shift_start=profile.shift_start, shift_end=profile.shift_end)


def _detail_page(user, status_code: int = 200, problem: str | None = None):
    profile = profile_of(user.id)
    page = render_template("admin/user.html", user=user, role_form=UserChangesForm(formdata=None, role=user.role),
        courier_form=_courier_form(profile) if user.role == Role.COURIER else None,
        password_form=UserChangesForm(formdata=None), sessions=live_sessions(user.id),
        locked_until=lock_status().get(user.username.lower()),
        bootstrap=(current_app.config.get("ADMIN_USERNAME") or "").lower() == user.username.lower(),
        problem=problem)
    return page, status_code
