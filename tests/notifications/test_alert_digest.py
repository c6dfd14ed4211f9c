"""The alert digest leaves through the outbox: one real email per admin address over SMTP, listing the alerts it
covers and nothing personal; the next digest waits ALERT_DIGEST_EVERY."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from app.domain.timeutil import utcnow
from app.extensions import db
from app.jobs.alerts import watch_for_alerts
from app.models import Notification, Shipment, User
from app.notifier.worker import OutboxWorker
from app.services.operations.alerts import raise_alert
from tests.conftest import VALID_BOOKING

ADMINS = ["ops@example.com", "lead@example.com"]


def test_the_digest_is_one_email_per_address_listing_its_alerts(make_app, mail_settings, smtp_server, make_user):
    app = make_app(**mail_settings, ADMIN_ALERT_EMAILS=ADMINS, ALERT_DIGEST_EVERY=timedelta(minutes=5))
    client = app.test_client()
    booked = client.post("/create", json=VALID_BOOKING)
    assert booked.status_code == 201
    tracking_id = booked.get_json()["tracking_id"]
    make_user("ravi", role="courier")
    start = utcnow()
    with app.app_context():
        shipment_id = db.session.scalar(select(Shipment.id).where(Shipment.tracking_id == tracking_id))
        courier_id = db.session.scalar(select(User.id).where(User.username == "ravi"))
        raise_alert("sla_breached", f"shipment:{shipment_id}", shipment_id=shipment_id,
                    details={"status": "Booked", "promised_by": "2026-12-07T18:29:59Z"}, now=start)
        raise_alert("courier_silent", f"courier:{courier_id}:x", courier_id=courier_id,
                    details={"open_stops": 3}, now=start)
        assert watch_for_alerts(start) == "queued a digest of 2 alerts"
        db.session.commit()
        assert watch_for_alerts(start + timedelta(minutes=1)) is None  # nothing new, and too soon anyway
    OutboxWorker(app).drain()
    digests = [m for m in smtp_server.sink.received() if m["Subject"] == "Waybill: 2 new alerts"]
    assert sorted(m["To"] for m in digests) == sorted(ADMINS)
    text = digests[0].get_body(("plain",)).get_content()
    assert "SLA breached" in text and tracking_id in text and "promised_by 2026-12-07T18:29:59Z" in text
    assert "Courier silent" in text and "courier ravi" in text and "open_stops 3" in text
    assert "http://waybill.test/admin/alerts" in text
    for private in (VALID_BOOKING["email"], "98765", VALID_BOOKING["receiver_name"], VALID_BOOKING["sender_name"]):
        assert private not in text, private
    html = digests[0].get_body(("html",)).get_content()
    assert tracking_id in html and "Courier silent" in html
    with app.app_context():
        rows = db.session.scalars(select(Notification).where(Notification.channel == "alert_digest")).all()
        assert {row.state for row in rows} == {"sent"} and len(rows) == 2
