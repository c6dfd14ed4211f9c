"""The outbox's pages: for staff, /admin/notifications lists it, /admin/notifications/<id>/retry revives a dead
row, /admin/notifications/defaults sets which statuses notify by default; for recipients, /n/<token> (public, see
app/notifications/choices.py) holds their choices and the one-click unsubscribe."""
from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from app.auth.guard import staff_required
from app.domain.roles import Permission
from app.errors import ValidationError, wants_html
from app.extensions import db
from app.models.notification import STATES
from app.notifications import bp
from app.notifications.forms import OutboxFilterForm, RetryForm
from app.notifications.serializers import notification_to_dict, outbox_page_to_dict
from app.services.outbox.queueing import list_outbox, retry_dead
from app.web.forms import field_errors

OUTBOX = "/admin/notifications"  # the staff pages' prefix (the blueprint has none: /n/… is public)


@bp.get(OUTBOX)
@staff_required(Permission.VIEW_OUTBOX)
def outbox():
    form = OutboxFilterForm(formdata=request.args)
    if not form.validate():
        raise ValidationError(fields=field_errors(form))
    page = list_outbox(state=form.state.data or None, page=form.page.data or 1)
    if wants_html():
        return render_template("notifications/outbox.html", outbox=page, form=form)
    return jsonify(outbox_page_to_dict(page))


@bp.post(f"{OUTBOX}/<int:notification_id>/retry")
@staff_required(Permission.RETRY_NOTIFICATIONS)
def retry(notification_id: int):
    notification = retry_dead(notification_id, actor=current_user.username)
    db.session.commit()
    if not wants_html():
        return jsonify({"notification": notification_to_dict(notification)})
    flash(gettext("Notification #%(id)s will be sent again shortly.", id=notification_id), "info")
    state = RetryForm().state.data
    return redirect(url_for(".outbox", state=state if state in STATES else None))
