"""Two status changes on one shipment at the same moment: both stored with a consistent status, or one 409."""
import threading

import pytest
from sqlalchemy import func, select

from app.errors import InvalidTransition
from app.extensions import db
from app.models import Notification, Shipment, TrackingEvent
from app.services.shipments.booking import NewShipment, create_shipment
from app.services.shipments.queries import find_shipment, timeline
from app.services.shipments.status_changes import record_status_change

NEW = NewShipment("Asha Rao", "Vikram Nair", "+919876543210", "vikram@example.com", "Kochi")


def book_at(app, *statuses: str) -> str:
    with app.app_context():
        tid = create_shipment(NEW).tracking_id
        db.session.commit()
        for status in statuses:
            record_status_change(tid, status, "Hub", None, actor="setup")
            db.session.commit()
        db.session.remove()
    return tid


def race(app, tid: str, first: str, second: str) -> dict[str, object]:
    """`first` takes the row and holds its transaction open until `second` is waiting on it, then commits."""
    results: dict[str, object] = {}
    first_has_row, second_started = threading.Event(), threading.Event()

    def run_first():
        with app.app_context():
            try:
                record_status_change(tid, first, "Hub A", None, actor="first")
                first_has_row.set()
                second_started.wait(5)
                threading.Event().wait(0.3)  # let `second` reach its UPDATE and block on our row
                db.session.commit()
                results["first"] = "ok"
            except Exception as exc:  # noqa: BLE001 - recorded for the assertions
                db.session.rollback()
                results["first"] = exc
                first_has_row.set()
            finally:
                db.session.remove()

    def run_second():
        first_has_row.wait(5)
        with app.app_context():
            second_started.set()
            try:
                record_status_change(tid, second, "Hub B", None, actor="second")
                db.session.commit()
                results["second"] = "ok"
            except Exception as exc:  # noqa: BLE001
                db.session.rollback()
                results["second"] = exc
            finally:
                db.session.remove()

    threads = [threading.Thread(target=run_first), threading.Thread(target=run_second)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(20)
    return results


def assert_consistent(app, tid: str) -> list[str]:
    with app.app_context():
        shipment = find_shipment(tid)
        events = timeline(shipment)
        assert shipment.status == events[-1].status, "status must be the latest event's status"
        notifications = db.session.scalar(select(func.count()).select_from(Notification)
                                          .where(Notification.shipment_id == shipment.id,
                                                 Notification.channel == "email"))
        assert notifications == len(events), "one email per stored event"
        db.session.remove()
        return [e.status for e in events]


def test_two_new_hubs_at_once_are_both_stored(app):
    tid = book_at(app, "Picked Up", "In Transit")
    results = race(app, tid, "In Transit", "In Transit")
    assert results == {"first": "ok", "second": "ok"}
    assert assert_consistent(app, tid) == ["Booked", "Picked Up", "In Transit", "In Transit", "In Transit"]


def test_the_same_step_twice_at_once_stores_one_and_gives_a_clean_409(app):
    tid = book_at(app)
    results = race(app, tid, "Picked Up", "Picked Up")
    assert results["first"] == "ok"
    assert isinstance(results["second"], InvalidTransition)
    assert results["second"].extra["current_status"] == "Picked Up"
    assert assert_consistent(app, tid) == ["Booked", "Picked Up"]


def test_a_change_that_lost_the_race_is_checked_against_the_new_status(app):
    tid = book_at(app, "Picked Up", "In Transit")
    results = race(app, tid, "Out for Delivery", "In Transit")  # In Transit is no longer allowed after OFD
    assert results["first"] == "ok" and isinstance(results["second"], InvalidTransition)
    assert assert_consistent(app, tid)[-1] == "Out for Delivery"


def test_a_change_that_lost_the_race_but_is_still_valid_applies_on_top(app):
    tid = book_at(app, "Picked Up", "In Transit")
    results = race(app, tid, "In Transit", "Out for Delivery")
    assert results == {"first": "ok", "second": "ok"}
    assert assert_consistent(app, tid)[-2:] == ["In Transit", "Out for Delivery"]


@pytest.mark.slow
def test_many_concurrent_hub_scans_lose_nothing(app):
    tid = book_at(app, "Picked Up", "In Transit")
    errors = []

    def scan(worker: int):
        for i in range(15):
            with app.app_context():
                try:
                    record_status_change(tid, "In Transit", f"Hub {worker}-{i}", None, actor=f"w{worker}")
                    db.session.commit()
                except Exception as exc:  # noqa: BLE001
                    db.session.rollback()
                    errors.append(exc)
                finally:
                    db.session.remove()

    threads = [threading.Thread(target=scan, args=(n,)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == []
    statuses = assert_consistent(app, tid)
    assert len(statuses) == 3 + 30
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TrackingEvent)) == 33
        assert db.session.scalar(select(Shipment.status)) == "In Transit"
