"""The field settings (admin): what proof a delivery needs, and the delivery code. GET /admin/field-settings shows
them (JSON `{"settings": {...}}` or the page); POST changes them (the page's form, or JSON naming only the
settings to change) and answers the same; audited."""
from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import current_user

from app.admin import bp
from app.admin.field_settings_forms import FieldSettingsForm
from app.auth.guard import staff_required
from app.domain.roles import Permission
from app.errors import ValidationError, wants_html
from app.extensions import db
from app.services.field.settings import get_settings, set_settings
from app.web.forms import answers_json, refused_on_page


@bp.get("/field-settings")
@staff_required(Permission.MANAGE_SETTINGS)
def field_settings():
    settings = get_settings()
    if not wants_html():
        return jsonify({"settings": settings})
    return _page(FieldSettingsForm(formdata=None, data=settings))


@bp.post("/field-settings")
@staff_required(Permission.MANAGE_SETTINGS)
def save_field_settings():
    form = FieldSettingsForm.from_request()
    try:
        form.validate_or_raise()
        settings = set_settings(form.sent(), actor=current_user.username)
    except ValidationError as error:
        return _page(form, refused_on_page(error, form)), error.status_code
    db.session.commit()
    if answers_json():
        return jsonify({"settings": settings})
    flash(gettext("Saved the field settings."), "success")
    return redirect(url_for(".field_settings"))


def _page(form: FieldSettingsForm, problem: str | None = None) -> str:
    return render_template("admin/field_settings.html", form=form, problem=problem)
