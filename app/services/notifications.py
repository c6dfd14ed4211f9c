"""Queueing recipient emails in the outbox (the notifier sends them after the commit)."""
from __future__ import annotations

from flask import current_app, render_template

from app.extensions import db
from app.models import Notification, Shipment, TrackingEvent


def enqueue_status_email(shipment: Shipment, event: TrackingEvent) -> Notification:
    """Insert the email for one tracking event into the outbox, in the caller's transaction."""
    context = {
        "shipment": shipment,
        "event": event,
        "tracking_url": f"{current_app.config['PUBLIC_BASE_URL']}/track/{shipment.tracking_id}",
    }
    notification = Notification(
        shipment_id=shipment.id,
        event_id=event.id,
        channel="email",
        recipient=shipment.email,
        subject=f"Shipment {shipment.tracking_id}: {event.status}",
        body_text=render_template("email/status.txt", **context),
        body_html=render_template("email/status.html", **context),
        state="pending",
        attempts=0,
        next_attempt_at=event.occurred_at,
    )
    db.session.add(notification)
    return notification
