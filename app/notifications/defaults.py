"""Which statuses notify by default, per channel, for admins: GET /admin/notifications/defaults shows them,
POST sets one channel's (form fields `channel` and `statuses`, or JSON {"channel", "statuses": [...]}); audited."""
from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from app.auth.guard import staff_required
from app.domain.roles import Permission
from app.domain.status import ALL_STATUSES
from app.errors import DomainError, wants_html
from app.extensions import db
from app.notifications.forms import DefaultsForm, defaults_from_json
from app.notifications.routes import OUTBOX, bp
from app.services.outbox.preferences import CHANNEL_LABELS, channel_defaults, set_channel_defaults
from app.web.forms import json_object_body


@bp.get(f"{OUTBOX}/defaults")
@staff_required(Permission.MANAGE_SETTINGS)
def defaults():
    if not wants_html():
        return jsonify({"defaults": _statuses_on(channel_defaults())})
    return _page()


@bp.post(f"{OUTBOX}/defaults")
@staff_required(Permission.MANAGE_SETTINGS)
def set_defaults():
    try:
        if request.is_json:
            channel, statuses = defaults_from_json(json_object_body())
        else:
            form = DefaultsForm()
            form.validate_or_raise()
            channel, statuses = form.channel.data, list(form.statuses.data or [])
        set_channel_defaults(channel, statuses, actor=current_user.username)
    except DomainError as error:
        if request.is_json or not wants_html():
            raise
        db.session.rollback()
        return _page(problem=error.message if not getattr(error, "fields", None)
                     else next(iter(error.fields.values()))), error.status_code
    db.session.commit()
    if not wants_html():
        return jsonify({"defaults": _statuses_on(channel_defaults())})
    flash(gettext("Saved the default %(channel)s statuses.", channel=CHANNEL_LABELS[channel]), "success")
    return redirect(url_for(".defaults"))


def _statuses_on(defaults: dict[str, dict[str, bool]]) -> dict[str, list[str]]:
    return {channel: [status for status in ALL_STATUSES if on[status]] for channel, on in defaults.items()}


def _page(problem: str | None = None) -> str:
    return render_template("notifications/defaults.html", defaults=channel_defaults(), statuses=ALL_STATUSES,
                           channel_labels=CHANNEL_LABELS, problem=problem)
