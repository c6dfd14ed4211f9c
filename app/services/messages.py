"""What an outbox row says, rendered by the outbox worker when it sends the row (not in the request that queued it).

A row names a shipment, one of its tracking events, a channel and a recipient. `load_facts` reads what the
messages of a claimed batch need in two queries; `render` picks the channel's render function
(`RENDERERS[channel]`), so a new channel (SMS, webhooks) adds one function and one entry.

"What was true at that event": events are append-only and the shipment fields a message shows (tracking ID,
names, destination) are fixed at booking, so the event, and the timeline up to and including it, read later are
what they were when the row was queued. Should shipment fields become editable, the row must keep a copy of them.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from flask import current_app, render_template
from markupsafe import escape
from sqlalchemy import select

from app.extensions import db
from app.models import Shipment, TrackingEvent
from app.services import webhooks
from app.timeutil import as_utc, isoformat_z, to_local

TIMELINE_LENGTH = 5  # events shown in an email, newest first


class OutboxRow(Protocol):
    """What rendering needs of a claimed outbox row."""

    id: int
    channel: str
    recipient: str
    subject: str
    shipment_id: int
    event_id: int


@dataclass(frozen=True)
class MessageFacts:
    """The shipments and their events (oldest first) that a batch of rows is about."""

    shipments: dict[int, Any]
    events: dict[int, list[Any]]

    def event_and_timeline(self, row: OutboxRow) -> tuple[Any, Any, list[Any]]:
        """(shipment, event, events up to and including it, newest first); LookupError if one is missing."""
        shipment = self.shipments.get(row.shipment_id)
        history = self.events.get(row.shipment_id, [])
        position = next((i for i, e in enumerate(history) if e.id == row.event_id), None)
        if shipment is None or position is None:
            raise LookupError(f"notification #{row.id}: its shipment or event is missing")
        return shipment, history[position], history[position::-1]


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    body_text: str
    body_html: str


def load_facts(rows: Iterable[OutboxRow]) -> MessageFacts:
    """Everything the messages of `rows` show, in two queries (shipments, then all their events). The staff-only
    note is never read: a message can only show what is meant for the customer."""
    shipment_ids = sorted({row.shipment_id for row in rows})
    if not shipment_ids:
        return MessageFacts({}, {})
    shipments = {s.id: s for s in db.session.execute(
        select(Shipment.id, Shipment.tracking_id, Shipment.sender_name, Shipment.receiver_name,
               Shipment.destination).where(Shipment.id.in_(shipment_ids)))}
    events: dict[int, list[Any]] = {}
    for event in db.session.execute(
            select(TrackingEvent.id, TrackingEvent.shipment_id, TrackingEvent.status, TrackingEvent.location,
                   TrackingEvent.customer_message, TrackingEvent.occurred_at)
            .where(TrackingEvent.shipment_id.in_(shipment_ids))
            .order_by(TrackingEvent.shipment_id, TrackingEvent.occurred_at, TrackingEvent.id)):
        events.setdefault(event.shipment_id, []).append(event)
    return MessageFacts(shipments, events)


def render_email(row: OutboxRow, facts: MessageFacts) -> RenderedEmail:
    """The status email: the event's own template (by status, else the default), plain text and HTML."""
    shipment, event, timeline = facts.event_and_timeline(row)
    tz_name = current_app.config["DISPLAY_TIMEZONE"]
    context = {
        "shipment": shipment,
        "event": event,
        "time_local": _format_time(event.occurred_at, tz_name),
        "time_utc": _format_time(event.occurred_at, "UTC"),
        "timeline": [
            {"status": e.status, "location": e.location, "time_local": _format_time(e.occurred_at, tz_name),
             "current": e.id == event.id}
            for e in timeline[:TIMELINE_LENGTH]
        ],
        "tracking_url": f"{current_app.config['PUBLIC_BASE_URL']}/track/{shipment.tracking_id}",
    }
    return RenderedEmail(
        subject=row.subject,
        body_text=render_template(_status_templates(event.status, "txt"), **context),
        body_html=render_template(_status_templates(event.status, "html"), **context),
    )


@dataclass(frozen=True)
class RenderedWebhook:
    event_id: str  # the Waybill-Event-Id header: one per delivery, the same on every attempt
    event_type: str
    body: bytes  # the exact bytes that are signed and sent


def render_webhook(row: OutboxRow, facts: MessageFacts) -> RenderedWebhook:
    """A webhook delivery's JSON: the event and the shipment as staff see it (it goes to an integrator), with
    the shipment's status as of this event. Rendered when sent, from append-only facts, so every attempt and
    a replay send the same document (only the signature's timestamp differs)."""
    shipment, event, timeline = facts.event_and_timeline(row)
    staff = db.session.execute(
        select(Shipment.mobile, Shipment.email, Shipment.created_at).where(Shipment.id == row.shipment_id)).one()
    note = db.session.scalar(select(TrackingEvent.note).where(TrackingEvent.id == row.event_id))
    event_id = webhooks.event_id_of(row.id)
    document = {
        "id": event_id,
        "type": row.subject,
        "created": isoformat_z(event.occurred_at),
        "data": {
            "shipment": {
                "tracking_id": shipment.tracking_id, "status": event.status,
                "sender_name": shipment.sender_name, "receiver_name": shipment.receiver_name,
                "mobile": staff.mobile, "email": staff.email, "destination": shipment.destination,
                "created_at": isoformat_z(staff.created_at),
                "tracking_url": f"{current_app.config['PUBLIC_BASE_URL']}/track/{shipment.tracking_id}",
            },
            "event": {"status": event.status, "location": event.location, "note": note,
                      "customer_message": event.customer_message, "occurred_at": isoformat_z(event.occurred_at)},
            "previous_status": timeline[1].status if len(timeline) > 1 else None,
        },
    }
    return RenderedWebhook(event_id, row.subject, json.dumps(document, separators=(",", ":")).encode())


def render_admin_alert(row: OutboxRow, facts: MessageFacts) -> RenderedEmail:
    """The admins' email about a webhook subscription that was switched off (its subject says which)."""
    link = f"{current_app.config['PUBLIC_BASE_URL']}/admin/webhooks"
    text = (f"{row.subject}.\n\nIts deliveries kept failing, so Waybill stopped sending to it. Check the "
            f"receiver, enable the subscription again and replay its dead deliveries at:\n{link}\n")
    html = (f"<p>{escape(row.subject)}.</p><p>Its deliveries kept failing, so Waybill stopped sending to it. "
            f"Check the receiver, enable the subscription again and replay its dead deliveries at "
            f"<a href=\"{escape(link)}\">{escape(link)}</a>.</p>")
    return RenderedEmail(subject=row.subject, body_text=text, body_html=html)


RENDERERS: dict[str, Callable[[OutboxRow, MessageFacts], Any]] = {
    "email": render_email, "webhook": render_webhook, "admin_email": render_admin_alert}


def render(row: OutboxRow, facts: MessageFacts):
    """The message for `row`, by its channel's render function; LookupError for a channel nobody renders."""
    renderer = RENDERERS.get(row.channel)
    if renderer is None:
        raise LookupError(f"notification #{row.id}: no renderer for channel {row.channel!r}")
    return renderer(row, facts)


def _format_time(value: datetime, tz_name: str) -> str:
    local = to_local(value, tz_name) if tz_name != "UTC" else as_utc(value)
    return f"{local.strftime('%d %b %Y, %H:%M')} {local.tzname()}"


def _status_templates(status: str, extension: str) -> list[str]:
    slug = "_".join(status.lower().split())
    return [f"email/status/{slug}.{extension}", f"email/status/default.{extension}"]
