"""JSON shapes of shipments and events. Public shapes carry no email and no full mobile number."""
from __future__ import annotations

from flask import current_app, url_for

from app.models import Shipment, TrackingEvent
from app.services.contacts import mask_mobile
from app.timeutil import isoformat_z


def event_to_dict(event: TrackingEvent, staff: bool = False) -> dict:
    data = {
        "status": event.status,
        "location": event.location,
        "note": event.note,
        "occurred_at": isoformat_z(event.occurred_at),
    }
    if staff:
        data["actor"] = event.actor
    return data


def tracking_url(tracking_id: str) -> str:
    return f"{current_app.config['PUBLIC_BASE_URL']}{url_for('tracking.track', tracking_id=tracking_id)}"


def shipment_to_dict(shipment: Shipment, events: list[TrackingEvent] | None = None,
                     staff: bool = False) -> dict:
    data = {
        "tracking_id": shipment.tracking_id,
        "status": shipment.status,
        "sender_name": shipment.sender_name,
        "receiver_name": shipment.receiver_name,
        "destination": shipment.destination,
        "mobile": shipment.mobile if staff else mask_mobile(shipment.mobile),
        "created_at": isoformat_z(shipment.created_at),
        "updated_at": isoformat_z(shipment.updated_at),
        "tracking_url": tracking_url(shipment.tracking_id),
    }
    if staff:
        data["email"] = shipment.email
    if events is not None:
        data["events"] = [event_to_dict(e, staff) for e in events]
    return data
