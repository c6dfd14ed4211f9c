"""Helpers for the courier app's tests: couriers, parcels on their run sheets, the app's requests."""
from __future__ import annotations

import base64
import io
import re
from datetime import date, timedelta

from PIL import Image
from sqlalchemy import func, select

from app.domain.status import Status
from app.domain.timeutil import isoformat_z, to_local, utcnow
from app.extensions import db
from app.models import Notification, RunSheet, RunSheetStop, Shipment, TrackingEvent, User
from app.services.field.settings import set_settings
from app.services.outbox.messages import load_facts, render
from app.services.shipments.status_changes import record_status_change

PATH_TO = {
    Status.BOOKED: [],
    Status.IN_TRANSIT: [Status.PICKED_UP, Status.IN_TRANSIT],
    Status.OUT_FOR_DELIVERY: [Status.PICKED_UP, Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY],
}
COURIER = "ravi"


def png_data_url(colour=(0, 0, 0, 255), size=(40, 20)) -> str:
    picture = Image.new("RGBA", size, (0, 0, 0, 0))
    for x in range(5, 30):
        picture.putpixel((x, 10), colour)
    buffer = io.BytesIO()
    picture.save(buffer, "PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def jpeg_data_url() -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (32, 24), (200, 120, 40)).save(buffer, "JPEG")
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


class Field:
    """Couriers, parcels on their run sheets and the app's requests, for one test."""

    def __init__(self, app, client, auth, make_user, create_shipment) -> None:
        self.app, self.client, self.auth = app, client, auth
        self.make_user, self.create_shipment = make_user, create_shipment
        self.serial = 0

    def courier(self, username: str = COURIER) -> int:
        return self.make_user(username, "correct-horse-1", "courier")

    def sign_in(self, username: str = COURIER, role: str = "courier", create: bool = False) -> None:
        self.auth.login(username, role=role, create=create)

    def parcel(self, status: str = Status.OUT_FOR_DELIVERY, **booking) -> str:
        tracking_id = self.create_shipment(**booking)
        with self.app.app_context():
            for step in PATH_TO[status]:
                record_status_change(tracking_id, step, "Kochi Hub", None, "operator1")
            db.session.commit()
        return tracking_id

    def assign(self, courier_id: int, tracking_ids: list[str], day: date | None = None) -> None:
        with self.app.app_context():
            day = day or local_today(self.app)
            sheet = db.session.scalars(select(RunSheet).where(RunSheet.courier_id == courier_id,
                                                              RunSheet.date == day)).first()
            if sheet is None:
                sheet = RunSheet(courier_id=courier_id, date=day, created_by="operator1")
                db.session.add(sheet)
                db.session.flush()
            for sequence, tracking_id in enumerate(tracking_ids, start=1):
                shipment_id = db.session.scalar(select(Shipment.id).where(Shipment.tracking_id == tracking_id))
                db.session.add(RunSheetStop(runsheet_id=sheet.id, shipment_id=shipment_id, sequence=sequence))
            db.session.commit()

    def event(self, tracking_id: str, status: str = Status.DELIVERED, **fields) -> dict:
        self.serial += 1
        body = {"id": f"evt-{self.serial:04d}", "tracking_id": tracking_id, "status": status,
                "at": isoformat_z(utcnow() - timedelta(minutes=1))}
        if status == Status.DELIVERED:
            body["received_by"] = "Vikram"
        if status == Status.DELIVERY_ATTEMPTED:
            body["attempt_reason"] = "nobody_home"
        body.update(fields)
        return {key: value for key, value in body.items() if value is not None}

    def send(self, *events: dict, expect: int = 200) -> list[dict]:
        response = self.client.post("/courier/events", json={"events": list(events)}, headers=self.auth.headers())
        assert response.status_code == expect, response.get_json()
        return response.get_json().get("results")

    def count(self, model, *conditions) -> int:
        with self.app.app_context():
            return db.session.scalar(select(func.count()).select_from(model).where(*conditions))

    def events_of(self, tracking_id: str) -> list[TrackingEvent]:
        with self.app.app_context():
            return list(db.session.scalars(select(TrackingEvent).join(Shipment).where(
                Shipment.tracking_id == tracking_id).order_by(TrackingEvent.id)))

    def status_of(self, tracking_id: str) -> str:
        with self.app.app_context():
            return db.session.scalar(select(Shipment.status).where(Shipment.tracking_id == tracking_id))

    def settings(self, **changes: str) -> None:
        with self.app.app_context():
            set_settings(changes, actor="admin1")
            db.session.commit()


def local_today(app) -> date:
    return to_local(utcnow(), app.config["DISPLAY_TIMEZONE"]).date()


def outcomes(results: list[dict]) -> list[str]:
    return [result["outcome"] for result in results]


def sent_code(app, tracking_id: str) -> str:
    """The code in the SMS queued for this parcel, as the outbox worker writes it."""
    with app.app_context(), app.test_request_context():
        row = db.session.scalars(select(Notification).join(Shipment).where(
            Shipment.tracking_id == tracking_id, Notification.channel == "code_sms")
            .order_by(Notification.id.desc())).first()
        [text] = render(row, load_facts([row])).texts
        return re.search(r"\b(\d{4})\b", text).group(1)




def user_id(app, username: str) -> int:
    with app.app_context():
        return db.session.scalar(select(User.id).where(User.username == username))
