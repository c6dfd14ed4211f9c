"""Helpers for the /api/v1 tests (the `issue_key` fixture, which makes keys, is in tests/conftest.py)."""
from __future__ import annotations

from app.extensions import db
from app.services.shipments.booking import NewShipment, create_shipment
from app.services.shipments.status_changes import record_status_change

NEW = NewShipment("Asha Rao", "Vikram Nair", "+919876543210", "vikram@example.com", "Kochi")


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def book(app, *statuses: str) -> str:
    """A shipment booked and moved through `statuses` by the services (no API call); its tracking ID."""
    with app.app_context():
        tracking_id = create_shipment(NEW, actor="setup").tracking_id
        for status in statuses:
            record_status_change(tracking_id, status, "Hub", None, actor="setup")
        db.session.commit()
    return tracking_id
