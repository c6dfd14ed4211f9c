"""Which statuses notify by default, per channel, for admins: GET /admin/notifications/defaults shows them,
POST sets one channel's (form fields `channel` and `statuses`, or JSON {"channel", "statuses": [...]}); audited."""
from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import current_user

from app.auth.guard import staff_required
from app.domain.roles import Permission
from app.domain.status import ALL_STATUSES
from app.errors import DomainError, wants_html
from app.extensions import db
from app.notifications import bp
from app.notifications.forms import DefaultsForm
from app.notifications.routes import OUTBOX
from app.services.outbox.preferences import CHANNEL_LABELS, channel_defaults, set_channel_defaults
from app.web.forms import read_form, refused_on_page


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
        form = read_form(DefaultsForm)
        channel = form.channel.data
        set_channel_defaults(channel, list(form.statuses.data or []), actor=current_user.username)
    except DomainError as error:
        return _page(problem=refused_on_page(error)), error.status_code
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
