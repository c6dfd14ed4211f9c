"""/api/v1/webhooks: an integrator's own webhook subscriptions, through the same service as /admin/webhooks.

A key sees and changes only the subscriptions of its own account; every change is audited by the service.
"""
from __future__ import annotations

from typing import Annotated, Literal

from flask_login import current_user
from pydantic import Field
from sqlalchemy import select

from app.api import api
from app.api.contract import Success, answer
from app.api.schemas import SINGLE_LINE, Answer, RequestBody, optional_text, text
from app.domain.roles import Permission
from app.errors import NotFound
from app.extensions import db
from app.models import Notification, Shipment
from app.models.webhook import DESCRIPTION_MAX, URL_MAX
from app.services.outbox import webhooks
from app.services.outbox.queueing import MAX_ROW_ID

EventType = Literal["shipment.created", "shipment.status_changed", "shipment.delivered", "shipment.ndr_opened",
                    "shipment.ndr_resolved"]
# https:// (any case), a host name with a dot whose last label starts with a letter (never an IP address, written
# in any of its forms), an optional port from 0 to 65535, then visible ASCII: the URLs the service always takes.
# It refuses more (credentials, addresses that are not public), and a name is checked again at every delivery.
WEBHOOK_URL = (r"^[Hh][Tt][Tt][Pp][Ss]://(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
               r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
               r"(?::(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5]))?"
               r"(?:[/?#][\x21-\x7e]*)?$")


class NewWebhook(RequestBody):
    """A receiver to call for the chosen events (https:// only; never a private or loopback address)."""
    url: Annotated[str, text(URL_MAX, "The receiver's https:// URL, by host name.", pattern=WEBHOOK_URL)]
    events: Annotated[list[EventType], Field(min_length=1, max_length=len(webhooks.EVENT_TYPES),
                                             description="The events to send.")]
    description: Annotated[str | None, optional_text(DESCRIPTION_MAX, "What the receiver is, for people.",
                                                     SINGLE_LINE)]


class Webhook(Answer):
    id: int
    url: str
    events: list[EventType]
    description: str | None
    active: bool
    disabled_reason: str | None
    failing_since: str | None = Field(description="ISO 8601 UTC: since when every attempt has failed.")
    previous_secret_until: str | None = Field(description="ISO 8601 UTC: the old secret signs too until then.")
    created_at: str
    updated_at: str


class NewWebhookAnswer(Webhook):
    secret: str = Field(description="The signing secret, shown this once: keep it to verify Waybill-Signature.")


class WebhookAttempt(Answer):
    delivery_id: int
    attempt: int
    attempted_at: str
    status_code: int | None
    duration_ms: int | None
    response_body: str | None = Field(description="The first 1 KB of the receiver's answer.")
    error: str | None


class WebhookDelivery(Answer):
    id: int
    event_id: str = Field(description="The Waybill-Event-Id header of this delivery.")
    type: EventType | str
    tracking_id: str
    state: str
    attempts: int
    last_error: str | None
    created_at: str
    sent_at: str | None


class WebhookView(Webhook):
    owner: str
    pending_deliveries: int
    recent_attempts: list[WebhookAttempt]
    dead_deliveries: list[WebhookDelivery]


class WebhookList(Answer):
    webhooks: list[WebhookView]


@api.operation("POST", "/webhooks", summary="Subscribe a receiver to events", tag="webhooks",
               permission=Permission.MANAGE_INTEGRATIONS, body=NewWebhook,
               response=Success(NewWebhookAnswer, 201, "Subscribed: the subscription and its secret (shown once)."))
def create_webhook(body: NewWebhook):
    """Deliveries are signed (`Waybill-Signature`) with the secret in this answer, which is never shown again.
    A URL the pattern allows can still be refused with a 400 naming `url` in `errors`: one whose host is (or
    stands for) a private, loopback or other non-public address, or that carries credentials."""
    subscription, secret = webhooks.create_subscription(current_user.id, body.url, list(body.events),
                                                         body.description, actor=current_user.username)
    db.session.commit()
    return answer(NewWebhookAnswer, {**webhooks.subscription_document(subscription), "secret": secret}, 201,
                  headers={"Cache-Control": "no-store"})


@api.operation("GET", "/webhooks", summary="List this account's webhook subscriptions", tag="webhooks",
               permission=Permission.MANAGE_INTEGRATIONS,
               response=Success(WebhookList, 200, "Each subscription with its recent attempts and dead deliveries."))
def list_webhooks():
    views = webhooks.overview(owner_id=current_user.id)
    return answer(WebhookList, {"webhooks": [webhooks.view_document(view) for view in views]})


@api.operation("POST", "/webhooks/<int:webhook_id>/disable", summary="Stop sending to a receiver", tag="webhooks",
               permission=Permission.MANAGE_INTEGRATIONS, response=Success(Webhook, 200, "Disabled."))
def disable_webhook(webhook_id: int):
    subscription = webhooks.set_active(webhook_id, False, actor=current_user.username, owner_id=current_user.id)
    db.session.commit()
    return answer(Webhook, webhooks.subscription_document(subscription))


@api.operation("DELETE", "/webhooks/<int:webhook_id>", summary="Delete a subscription", tag="webhooks",
               permission=Permission.MANAGE_INTEGRATIONS,
               response=Success(None, 204, "Deleted; its waiting deliveries are dropped.", media_type=None))
def delete_webhook(webhook_id: int):
    webhooks.delete_subscription(webhook_id, actor=current_user.username, owner_id=current_user.id)
    db.session.commit()
    return "", 204


@api.operation("POST", "/webhooks/<int:webhook_id>/deliveries/<int:delivery_id>/replay",
               summary="Send a dead delivery again", tag="webhooks", permission=Permission.MANAGE_INTEGRATIONS,
               errors=(409,), response=Success(WebhookDelivery, 200, "Queued again, with the same event id."))
def replay_webhook_delivery(webhook_id: int, delivery_id: int):
    """Only a dead delivery of an active subscription can be replayed (409 otherwise)."""
    subscription = webhooks.get_subscription(webhook_id, owner_id=current_user.id)
    found = db.session.get(Notification, delivery_id) if delivery_id <= MAX_ROW_ID else None
    if found is None or found.recipient != subscription.recipient:
        raise NotFound(f"No delivery #{delivery_id} for webhook #{webhook_id}.")
    delivery = webhooks.replay_delivery(delivery_id, actor=current_user.username, owner_id=current_user.id)
    db.session.commit()
    tracking_id = db.session.scalar(select(Shipment.tracking_id).where(Shipment.id == delivery.shipment_id))
    return answer(WebhookDelivery, webhooks.delivery_document(delivery, tracking_id))
