"""JSON shapes of shipments, events, audit entries and staff accounts.

Public shapes (anyone with a tracking ID or a phone number) follow DESIGN.md rule 9: status, timeline with hub
locations and customer-facing messages, destination city, first names with initials. No full name, street
address, email, mobile (not even masked: its last digits are the proof that unlocks the full details) or staff
note. Staff shapes carry the full record. The public shipment and event shapes are the public tracking
document's, so they live with it in app.services.shipments.public_document (a service imports nothing from app.web).
"""
from __future__ import annotations

from flask import url_for

from app.domain.parcels import parcel_of
from app.domain.privacy import destination_area
from app.domain.roles import Role
from app.domain.timeutil import isoformat_z
from app.models import AuditEntry, CourierProfile, DeliveryProof, Shipment, TrackingEvent, User
from app.services.planning.zones import zone_ref
from app.services.shipments.public_document import public_event_to_dict, public_shipment_to_dict, tracking_url
from app.services.staff.audit import AuditPage


def event_to_dict(event: TrackingEvent, staff: bool = False) -> dict:
    """An event as anyone may see it (its customer-facing message, the public tracking document's shape); staff
    get the note and the actor instead of the attempt reason and the released hold."""
    if not staff:
        return public_event_to_dict(event)
    return {
        "status": event.status,
        "location": event.location,
        "customer_message": event.customer_message,
        "occurred_at": isoformat_z(event.occurred_at),
        "note": event.note,
        "actor": event.actor,
    }


def shipment_to_dict(shipment: Shipment, events: list[TrackingEvent] | None = None,
                     staff: bool = False) -> dict:
    """The staff record (staff=True), or else the public tracking document."""
    if not staff:
        return public_shipment_to_dict(shipment, events)
    data = {
        "tracking_id": shipment.tracking_id,
        "status": shipment.status,
        "sender_name": shipment.sender_name,
        "receiver_name": shipment.receiver_name,
        "destination": shipment.destination,
        "mobile": shipment.mobile,
        "email": shipment.email,
        "sender_mobile": shipment.sender_mobile,
        "sender_email": shipment.sender_email,
        **parcel_of(shipment).as_dict(),
        "charges": shipment.charges,
        **planning_to_dict(shipment),
        "promised_by": isoformat_z(shipment.promised_by),
        "created_at": isoformat_z(shipment.created_at),
        "updated_at": isoformat_z(shipment.updated_at),
        "tracking_url": tracking_url(shipment.tracking_id),
    }
    if events is not None:
        data["events"] = [event_to_dict(e, staff=True) for e in events]
    return data


def planning_to_dict(shipment: Shipment) -> dict:
    """Staff only: where the parcel goes on the map, its zone and its delivery window (never public: a point
    is an address)."""
    point = None
    if shipment.destination_lat is not None and shipment.destination_lon is not None:
        point = {"lat": shipment.destination_lat, "lon": shipment.destination_lon,
                 "precision": shipment.destination_precision}
    window = None
    if shipment.window_from is not None and shipment.window_to is not None:
        window = {"from": isoformat_z(shipment.window_from), "to": isoformat_z(shipment.window_to)}
    return {"destination_point": point, "zone": zone_ref(shipment.zone_id), "delivery_window": window}


def proof_to_dict(shipment: Shipment, event: TrackingEvent, proof: DeliveryProof) -> dict:
    """Staff only: a proof of delivery with links to its files (served by a staff-only route)."""
    def file_url(kind: str) -> str | None:
        if getattr(proof, f"{kind}_key") is None:
            return None
        return url_for("admin.proof_evidence", tracking_id=shipment.tracking_id, proof_id=proof.id, kind=kind)

    return {
        "status": event.status,
        "occurred_at": isoformat_z(event.occurred_at),
        "received_by": proof.received_by,
        "attempt_reason": proof.attempt_reason,
        "signature_url": file_url("signature"),
        "photo_url": file_url("photo"),
    }


def audit_entry_to_dict(entry: AuditEntry) -> dict:
    """Staff only (the audit trail and a shipment's staff page)."""
    return {
        "at": isoformat_z(entry.at),
        "actor": entry.actor,
        "action": entry.action,
        "target_type": entry.target_type,
        "target_id": entry.target_id,
        "details": entry.details or {},
    }


def audit_page_to_dict(page: AuditPage) -> dict:
    return {
        "entries": [audit_entry_to_dict(e) for e in page.entries],
        "page": page.page,
        "per_page": page.per_page,
        "pages": page.pages,
        "total": page.total,
    }


def search_result_to_dict(shipment: Shipment) -> dict:
    """One shipment in a search by mobile: anyone may type any number, so even less than the tracking page."""
    return {
        "tracking_id": shipment.tracking_id,
        "status": shipment.status,
        "updated_at": isoformat_z(shipment.updated_at),
        "destination_city": destination_area(shipment.destination),
        "tracking_url": tracking_url(shipment.tracking_id),
    }


def full_details_to_dict(shipment: Shipment) -> dict:
    """What the visitor's proof (last 4 digits of the mobile) unlocks: the full names and the address."""
    return {
        "tracking_id": shipment.tracking_id,
        "sender_name": shipment.sender_name,
        "receiver_name": shipment.receiver_name,
        "destination": shipment.destination,
    }


def user_to_dict(user: User, profile: CourierProfile | None = None) -> dict:
    """A staff account for API clients (never its password hash); a courier's also carries their `profile`."""
    body = {"username": user.username, "role": user.role, "active": user.active,
            "last_login_at": isoformat_z(user.last_login_at), "created_at": isoformat_z(user.created_at)}
    if user.role == Role.COURIER:
        body["courier"] = None if profile is None else {
            "name": profile.name, "vehicle": profile.vehicle, "capacity": profile.capacity,
            "shift_start": profile.shift_start.strftime("%H:%M"), "shift_end": profile.shift_end.strftime("%H:%M")}
    return body
