"""Couriers, their profiles, run sheets and positions made directly with the models, for the location tests
(tests/test_courier_locations.py, test_couriers_list.py, test_public_courier.py)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from app.domain.timeutil import to_local, utcnow
from app.extensions import db
from app.models import CourierPosition, CourierProfile, RunSheet, RunSheetStop, Shipment
from app.services.shipments.status_changes import record_status_change
from app.services.staff.users import create_user, find_user

PASSWORD = "correct-horse-1"
ALL_DAY = (time(0, 0), time.max)
TIMEZONE = "Asia/Kolkata"


def make_courier(app, username: str = "ravi", *, name: str | None = "Ravi Kumar", shift=ALL_DAY,
                 profile: bool = True, **whereabouts) -> int:
    """A courier account (and its profile, unless `profile` is False); the user id. `whereabouts` sets the
    profile's last position and anchor columns."""
    with app.app_context():
        user = find_user(username) or create_user(username, PASSWORD, "courier")
        db.session.flush()
        if profile and db.session.get(CourierProfile, user.id) is None:
            db.session.add(CourierProfile(user_id=user.id, name=name, vehicle="two_wheeler", capacity=40,
                                          shift_start=shift[0], shift_end=shift[1], **whereabouts))
        db.session.commit()
        return user.id


def set_profile(app, courier_id: int, **values) -> None:
    with app.app_context():
        profile = db.session.get(CourierProfile, courier_id)
        for name, value in values.items():
            setattr(profile, name, value)
        db.session.commit()


def profile_of(app, courier_id: int) -> CourierProfile:
    with app.app_context():
        profile = db.session.get(CourierProfile, courier_id)
        db.session.expunge(profile)
        return profile


def sign_in(client, username: str) -> dict[str, str]:
    """Sign in as an existing account; the CSRF header for its JSON posts."""
    response = client.post("/login", json={"username": username, "password": PASSWORD})
    assert response.status_code == 200, response.get_json()
    return {"X-CSRFToken": response.get_json()["csrf_token"]}


def shift_around(moment: datetime, inside: bool) -> tuple[time, time]:
    """A two-hour shift (local) that holds `moment`, or one that starts an hour after it."""
    local = to_local(moment, TIMEZONE)
    if inside:
        return (local - timedelta(hours=1)).time(), (local + timedelta(hours=1)).time()
    return (local + timedelta(hours=1)).time(), (local + timedelta(hours=3)).time()


def add_positions(app, courier_id: int, points: list[tuple[datetime, float, float]]) -> None:
    with app.app_context():
        db.session.add_all(CourierPosition(courier_id=courier_id, at=at, lat=lat, lon=lon, accuracy=5.0)
                           for at, lat, lon in points)
        db.session.commit()


def move_to(app, tracking_id: str, *statuses: str) -> None:
    """Record each status in turn, through the status-change core."""
    with app.app_context():
        for status in statuses:
            record_status_change(tracking_id, status, "Hub", None, actor="test")
        db.session.commit()


OUT_FOR_DELIVERY = ("Picked Up", "In Transit", "Out for Delivery")


def run_sheet(app, courier_id: int, stops: list[tuple[str, str]], day: date | None = None,
              closed_at: dict[str, datetime] | None = None, outcome: str | None = None) -> int:
    """A run sheet of `stops` ((tracking ID, state) in sequence order, from 1); done stops close at
    `closed_at[tracking_id]` (else now) with `outcome`. Its id."""
    closed_at = closed_at or {}
    with app.app_context():
        sheet = RunSheet(courier_id=courier_id, date=day or to_local(utcnow(), TIMEZONE).date(), created_by="test")
        db.session.add(sheet)
        db.session.flush()
        for sequence, (tracking_id, state) in enumerate(stops, start=1):
            shipment_id = db.session.query(Shipment.id).filter_by(tracking_id=tracking_id).scalar()
            done = state == "done"
            db.session.add(RunSheetStop(runsheet_id=sheet.id, shipment_id=shipment_id, sequence=sequence,
                                        state=state, outcome=outcome if done else None,
                                        closed_at=closed_at.get(tracking_id, utcnow()) if done else None))
        db.session.commit()
        return sheet.id


def close_stop(app, tracking_id: str) -> None:
    """Mark a parcel's open stop done (as the status-change core would when it is delivered elsewhere)."""
    with app.app_context():
        stop = (db.session.query(RunSheetStop).join(Shipment, Shipment.id == RunSheetStop.shipment_id)
                .filter(Shipment.tracking_id == tracking_id, RunSheetStop.state == "open").one())
        stop.state, stop.outcome, stop.closed_at = "done", "Delivered", utcnow()
        db.session.commit()
