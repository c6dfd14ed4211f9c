"""Webhook subscriptions from the browser and for scripts: /admin/webhooks (admins), routes of the admin blueprint.

HTML and JSON share the URLs: GET /admin/webhooks → {"subscriptions": [...]} (each with its recent attempts and
dead deliveries); POST /admin/webhooks {"url", "events", "description"?} → 201 with the signing secret in
"secret", shown this once; POST …/<id>/disable, …/<id>/enable, …/<id>/rotate ({"overlap_hours"?} → 200 with the
new "secret"), …/<id>/delete; POST /admin/webhooks/deliveries/<id>/replay sends a dead delivery again.

As in the API (/api/v1/webhooks), an admin sees and acts on their own subscriptions only: another admin's is a 404.
Answers that show a secret carry `Cache-Control: no-store`.
"""
from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import current_user

from app.admin import bp
from app.admin.confirm import Question, confirm_first
from app.admin.forms import RotateSecretForm, WebhookForm
from app.auth.guard import staff_required
from app.domain.roles import Permission
from app.errors import DomainError, wants_html
from app.extensions import db
from app.services.outbox import webhooks
from app.web.forms import answers_json, read_form

NO_STORE = {"Cache-Control": "no-store"}  # on answers that show a signing secret


@bp.get("/webhooks")
@staff_required(Permission.MANAGE_INTEGRATIONS)
def webhooks_page():
    views = webhooks.overview(owner_id=current_user.id)
    if not wants_html():
        return jsonify({"subscriptions": [webhooks.view_document(view) for view in views],
                        "event_types": list(webhooks.EVENT_TYPES)})
    return _page(views)


@bp.post("/webhooks")
@staff_required(Permission.MANAGE_INTEGRATIONS)
def create_webhook():
    form = read_form(WebhookForm)
    try:
        subscription, secret = webhooks.create_subscription(
            current_user.id, form.url.data, form.events.data, form.description.data, actor=current_user.username)
    except DomainError as error:
        if answers_json():
            raise
        db.session.rollback()
        return _page(webhooks.overview(owner_id=current_user.id), error.status_code, problem=error,
                     entered=form.data)
    db.session.commit()
    if answers_json():
        return jsonify({**webhooks.subscription_document(subscription), "secret": secret}), 201, NO_STORE
    # The secret is on this page only: never in a flash message (the session) or a URL.
    return *_page(webhooks.overview(owner_id=current_user.id), 201, secret=(subscription.id, secret)), NO_STORE


def _ask_disable(subscription_id: int) -> Question:
    webhooks.get_subscription(subscription_id, owner_id=current_user.id)  # an unknown id is a 404 here too
    return Question(heading=gettext("Disable webhook #%(id)s?", id=subscription_id),
                    question=gettext("Are you sure you want to disable webhook #%(id)s? Nothing is sent to it until "
                                     "it is enabled again.", id=subscription_id),
                    button=gettext("Disable"), back_url=url_for("admin.webhooks_page"))


def _ask_delete(subscription_id: int) -> Question:
    webhooks.get_subscription(subscription_id, owner_id=current_user.id)
    return Question(heading=gettext("Delete webhook #%(id)s?", id=subscription_id),
                    question=gettext("Are you sure you want to delete webhook #%(id)s? This cannot be undone.",
                                     id=subscription_id),
                    button=gettext("Delete"), back_url=url_for("admin.webhooks_page"))


@bp.route("/webhooks/<int:subscription_id>/disable", methods=["GET", "POST"])  # GET: the confirmation page
@staff_required(Permission.MANAGE_INTEGRATIONS)
@confirm_first(_ask_disable)
def disable_webhook(subscription_id: int):
    return _set_active(subscription_id, False)


@bp.post("/webhooks/<int:subscription_id>/enable")
@staff_required(Permission.MANAGE_INTEGRATIONS)
def enable_webhook(subscription_id: int):
    return _set_active(subscription_id, True)


def _set_active(subscription_id: int, active: bool):
    subscription = webhooks.set_active(subscription_id, active, actor=current_user.username,
                                       owner_id=current_user.id)
    db.session.commit()
    if answers_json():
        return jsonify(webhooks.subscription_document(subscription))
    flash(gettext("Webhook #%(id)s enabled.", id=subscription_id) if active
          else gettext("Webhook #%(id)s disabled.", id=subscription_id), "success")
    return redirect(url_for("admin.webhooks_page"))


@bp.post("/webhooks/<int:subscription_id>/rotate")
@staff_required(Permission.MANAGE_INTEGRATIONS)
def rotate_webhook_secret(subscription_id: int):
    overlap = read_form(RotateSecretForm).overlap_hours.data
    subscription, secret = webhooks.rotate_secret(subscription_id, actor=current_user.username,
                                                  overlap_hours=overlap, owner_id=current_user.id)
    db.session.commit()
    if answers_json():
        return jsonify({**webhooks.subscription_document(subscription), "secret": secret}), 200, NO_STORE
    return *_page(webhooks.overview(owner_id=current_user.id), secret=(subscription.id, secret)), NO_STORE


@bp.route("/webhooks/<int:subscription_id>/delete", methods=["GET", "POST"])  # GET: the confirmation page
@staff_required(Permission.MANAGE_INTEGRATIONS)
@confirm_first(_ask_delete)
def delete_webhook(subscription_id: int):
    webhooks.delete_subscription(subscription_id, actor=current_user.username, owner_id=current_user.id)
    db.session.commit()
    if answers_json():
        return jsonify({"id": subscription_id, "deleted": True})
    flash(gettext("Webhook #%(id)s deleted.", id=subscription_id), "success")
    return redirect(url_for("admin.webhooks_page"))


@bp.post("/webhooks/deliveries/<int:delivery_id>/replay")
@staff_required(Permission.MANAGE_INTEGRATIONS)
def replay_webhook_delivery(delivery_id: int):
    notification = webhooks.replay_delivery(delivery_id, actor=current_user.username, owner_id=current_user.id)
    db.session.commit()
    if answers_json():
        return jsonify({"id": notification.id, "event_id": webhooks.event_id_of(notification.id),
                        "state": notification.state})
    flash(gettext("Delivery #%(id)s will be sent again.", id=delivery_id), "success")
    return redirect(url_for("admin.webhooks_page"))


def _page(views, status_code: int = 200, *, problem: DomainError | None = None, entered: dict | None = None,
          secret: tuple[int, str] | None = None):
    fields = getattr(problem, "fields", None) or {}
    page = render_template("admin/webhooks.html", views=views, event_types=webhooks.EVENT_TYPES,
                           events_of=webhooks.events_of, entered=entered or {}, fields=fields,
                           problem=None if problem is None or fields else problem.message, secret=secret)
    return page, status_code
