"""API keys from the browser and as JSON: /admin/api-keys (admins), routes of the admin blueprint.

GET /admin/api-keys → {"api_keys": [...]}; POST /admin/api-keys {"name", "username", "expires_at"?} → 201 with
the secret in `key` (the only time it is shown); POST /admin/api-keys/<id>/revoke → 200. The browser gets the
list page, the new key shown once on it, and a revoke button per key, which asks to confirm first
(app.admin.confirm).
"""
from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from flask import current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user
from wtforms import StringField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.validators import ValidationError as FieldError

from app.admin import bp
from app.admin.confirm import Question, confirm_first
from app.auth.guard import staff_required
from app.domain.roles import Permission
from app.domain.timeutil import isoformat_z
from app.errors import DomainError, wants_html
from app.extensions import db
from app.models import ApiKey
from app.models.api_key import KEY_NAME_MAX
from app.models.user import USERNAME_MAX
from app.services.staff.api_keys import create_api_key, get_api_key, list_api_keys, revoke_api_key
from app.services.staff.users import list_users
from app.web.forms import RequestForm, answers_json, refused_on_page, strip

EXPIRY_HINT = "Optional. A date and time (in the display time zone unless it names an offset); empty: no expiry."


class ApiKeyForm(RequestForm):
    name = StringField("Name", filters=[strip], validators=[
        DataRequired("Give the key a name."), Length(max=KEY_NAME_MAX, message=f"At most {KEY_NAME_MAX} characters.")])
    username = StringField("Staff account", filters=[strip], validators=[
        DataRequired("Name the staff account the key acts as."),
        Length(max=USERNAME_MAX, message=f"At most {USERNAME_MAX} characters.")])
    expires_at = StringField("Expires", filters=[strip], validators=[Optional()],
                             render_kw={"type": "datetime-local"})
    expiry: datetime | None = None  # expires_at, read (set by its validator)

    def validate_expires_at(self, field) -> None:
        if not field.data:
            return
        try:
            moment = datetime.fromisoformat(field.data.replace("Z", "+00:00"))
        except ValueError as exc:
            raise FieldError("Enter a date and time such as 2027-01-31T18:00.") from exc
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=ZoneInfo(current_app.config["DISPLAY_TIMEZONE"]))
        self.expiry = moment


def api_key_to_dict(record: ApiKey) -> dict:
    """A key for admins: never its secret nor its hash."""
    return {"id": record.id, "name": record.name, "prefix": record.prefix, "username": record.user.username,
            "role": record.user.role, "created_by": record.created_by, "created_at": isoformat_z(record.created_at),
            "expires_at": isoformat_z(record.expires_at), "revoked_at": isoformat_z(record.revoked_at),
            "last_used_at": isoformat_z(record.last_used_at)}


@bp.get("/api-keys")
@staff_required(Permission.MANAGE_INTEGRATIONS)
def api_keys():
    keys = list_api_keys()
    if not wants_html():
        return jsonify({"api_keys": [api_key_to_dict(k) for k in keys]})
    return _page(ApiKeyForm(formdata=None), keys)


@bp.post("/api-keys")
@staff_required(Permission.MANAGE_INTEGRATIONS)
def create_api_key_view():
    form = ApiKeyForm.from_request()
    try:
        form.validate_or_raise()
        issued = create_api_key(form.name.data, form.username.data, form.expiry, actor=current_user.username)
    except DomainError as error:
        problem = refused_on_page(error, form)
        return _page(form, list_api_keys(), 400 if problem is None else error.status_code)
    db.session.commit()
    if request.is_json:
        body = {**api_key_to_dict(issued.record), "key": issued.secret}
        return jsonify(body), 201, {"Cache-Control": "no-store"}
    # Shown on this response only: a redirect would have to carry the secret somewhere.
    page, status = _page(ApiKeyForm(formdata=None), list_api_keys(), 201, new_key=issued)
    return page, status, {"Cache-Control": "no-store"}


def _ask_revoke(key_id: int) -> Question:
    record = get_api_key(key_id)
    return Question(heading=gettext("Revoke the key %(name)s?", name=record.name),
                    question=gettext("Are you sure you want to revoke the key %(prefix)s… (%(name)s)? Scripts "
                                     "using it are refused at once, and a revoked key cannot be restored.",
                                     prefix=record.prefix, name=record.name),
                    button=gettext("Revoke"), back_url=url_for("admin.api_keys"))


@bp.route("/api-keys/<int:key_id>/revoke", methods=["GET", "POST"])
@staff_required(Permission.MANAGE_INTEGRATIONS)
@confirm_first(_ask_revoke)
def revoke_api_key_view(key_id: int):
    record = revoke_api_key(key_id, actor=current_user.username)
    db.session.commit()
    if answers_json():
        return jsonify(api_key_to_dict(record))
    flash(f"Revoked the key {record.prefix}… ({record.name}).", "success")
    return redirect(url_for("admin.api_keys"))


def _page(form: ApiKeyForm, keys: list[ApiKey], status_code: int = 200, new_key=None):
    accounts = [user.username for user in list_users() if user.active]
    return render_template("admin/api_keys.html", form=form, keys=keys, accounts=accounts, new_key=new_key,
                           expiry_hint=EXPIRY_HINT), status_code
