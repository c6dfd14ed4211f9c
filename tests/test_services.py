"""Services against a real database, without HTTP."""
import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.errors import InvalidTransition, NotFound, ValidationError
from app.extensions import db
from app.models import Notification, Shipment, TrackingEvent
from app.services.shipments import booking
from app.services.shipments import queries as service
from app.services.shipments.booking import NewShipment, create_shipment
from app.services.shipments.status_changes import record_status_change

NEW = NewShipment(sender_name="Asha Rao", receiver_name="Vikram Nair", mobile="+919876543210",
                  email="vikram@example.com", destination="Kochi")


def count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def book() -> Shipment:
    shipment = create_shipment(NEW)
    db.session.commit()
    return shipment


def test_booking_writes_shipment_first_event_and_email_in_one_unit(app_ctx):
    shipment = book()
    assert shipment.status == "Booked"
    events = service.timeline(shipment)
    assert [(e.status, e.location, e.actor) for e in events] == [("Booked", "Origin Facility", "customer")]
    notification = db.session.scalars(select(Notification)).one()
    assert (notification.recipient, notification.state, notification.event_id) == \
        ("vikram@example.com", "pending", events[0].id)
    assert shipment.tracking_id in notification.subject and "Booked" in notification.subject


# The database itself refuses the outbox row, the last of the booking's three inserts (after the event's).
REFUSE_OUTBOX = {
    "sqlite": ["CREATE TRIGGER refuse_outbox BEFORE INSERT ON notifications "
               "BEGIN SELECT RAISE(ABORT, 'outbox refused'); END"],
    "postgresql": ["CREATE FUNCTION refuse_outbox() RETURNS trigger LANGUAGE plpgsql AS "
                   "$$ BEGIN RAISE EXCEPTION 'outbox refused'; END $$",
                   "CREATE TRIGGER refuse_outbox BEFORE INSERT ON notifications "
                   "FOR EACH ROW EXECUTE FUNCTION refuse_outbox()"],
}
ALLOW_OUTBOX = {"sqlite": ["DROP TRIGGER refuse_outbox"],
                "postgresql": ["DROP TRIGGER refuse_outbox ON notifications", "DROP FUNCTION refuse_outbox()"]}


def _run_ddl(statements: list[str]) -> None:
    with db.engine.begin() as conn:
        for statement in statements:
            conn.execute(text(statement))


def test_booking_that_fails_after_the_event_insert_leaves_nothing_behind(app_ctx):
    dialect = db.engine.dialect.name
    _run_ddl(REFUSE_OUTBOX[dialect])
    try:
        with pytest.raises(DBAPIError, match="outbox refused"):
            create_shipment(NEW)
        db.session.rollback()
    finally:
        _run_ddl(ALLOW_OUTBOX[dialect])
    assert (count(Shipment), count(TrackingEvent), count(Notification)) == (0, 0, 0)
    book()  # and the next booking, with the outbox accepting rows again, writes all three
    assert (count(Shipment), count(TrackingEvent), count(Notification)) == (1, 1, 1)


def test_tracking_id_collision_draws_a_new_id(app_ctx, monkeypatch):
    first = book()
    draws = iter([first.tracking_id, first.tracking_id, "0000ABCD"])
    monkeypatch.setattr(booking, "new_tracking_id", lambda: next(draws))
    second = create_shipment(NEW)
    db.session.commit()
    assert second.tracking_id == "0000ABCD"
    assert count(Shipment) == 2


def test_find_is_case_insensitive_and_ignores_spaces(app_ctx):
    shipment = book()
    assert service.find_shipment(f"  {shipment.tracking_id.lower()} ").id == shipment.id
    with pytest.raises(NotFound):
        service.find_shipment("FFFFFFFF")
    with pytest.raises(NotFound):
        service.find_shipment("not-an-id")


def test_status_change_appends_event_updates_status_and_queues_email(app_ctx):
    shipment = book()
    updated, event = record_status_change(shipment.tracking_id, "picked up", "Vijayawada Hub", "Collected",
                                          actor="op1")
    db.session.commit()
    assert updated.status == "Picked Up" and event.status == "Picked Up"
    assert updated.updated_at >= updated.created_at
    assert [e.status for e in service.timeline(updated)] == ["Booked", "Picked Up"]
    assert count(Notification) == 2
    assert (event.actor, event.note, event.location) == ("op1", "Collected", "Vijayawada Hub")


def test_every_status_row_names_its_event_and_says_the_events_status(app_ctx):
    """One booking (one statement on PostgreSQL), bulk bookings and a status change each store the subject
    "Shipment <tracking ID>: <status>" of the very event the row links to."""
    single = book()
    [bulk] = booking.create_shipments([NEW], actor="op1")
    db.session.commit()
    record_status_change(single.tracking_id, "Picked Up", "Vijayawada Hub", None, actor="op1")
    record_status_change(bulk, "Cancelled", "Origin Facility", None, actor="op1")
    db.session.commit()
    rows = db.session.execute(
        select(Notification.channel, Notification.subject, Shipment.tracking_id, TrackingEvent.status)
        .join(TrackingEvent, TrackingEvent.id == Notification.event_id)
        .join(Shipment, Shipment.id == Notification.shipment_id)
        .where(Notification.channel.in_(("email", "sms")))).all()
    assert {(row.tracking_id, row.status) for row in rows} == {
        (single.tracking_id, "Booked"), (single.tracking_id, "Picked Up"), (bulk, "Booked"), (bulk, "Cancelled")}
    assert all(row.subject == f"Shipment {row.tracking_id}: {row.status}" for row in rows)


def test_invalid_transition_names_allowed_statuses_and_changes_nothing(app_ctx):
    shipment = book()
    with pytest.raises(InvalidTransition) as info:
        record_status_change(shipment.tracking_id, "Delivered", "Hub", None, actor="op1")
    db.session.rollback()
    assert info.value.status_code == 409
    assert info.value.extra["allowed"] == ["Picked Up", "Cancelled", "On Hold"]
    assert "Picked Up" in info.value.message
    assert (count(TrackingEvent), count(Notification)) == (1, 1)
    assert db.session.get(Shipment, shipment.id).status == "Booked"


def test_unknown_status_is_a_validation_error(app_ctx):
    shipment = book()
    with pytest.raises(ValidationError) as info:
        record_status_change(shipment.tracking_id, "Teleported", "Hub", None, actor="op1")
    assert "status" in info.value.fields


def test_on_hold_returns_to_the_status_it_interrupted(app_ctx):
    tid = book().tracking_id
    for status in ["Picked Up", "In Transit", "On Hold"]:
        record_status_change(tid, status, "Hub", None, actor="op1")
        db.session.commit()
    shipment = service.find_shipment(tid)
    assert service.next_statuses(shipment) == ["In Transit", "RTO Initiated"]
    with pytest.raises(InvalidTransition):
        record_status_change(tid, "Out for Delivery", "Hub", None, actor="op1")
    db.session.rollback()
    record_status_change(tid, "In Transit", "Hub", "Released", actor="op1")
    db.session.commit()
    assert service.find_shipment(tid).status == "In Transit"


def test_delivered_is_final(app_ctx):
    tid = book().tracking_id
    for status in ["Picked Up", "In Transit", "Out for Delivery", "Delivered"]:
        record_status_change(tid, status, "Hub", None, actor="op1")
        db.session.commit()
    with pytest.raises(InvalidTransition) as info:
        record_status_change(tid, "On Hold", "Hub", None, actor="op1")
    assert info.value.extra["allowed"] == []


def test_search_by_mobile_finds_all_spellings_newest_first(app_ctx):
    first, second = book(), book()
    other = create_shipment(NewShipment(**{**NEW.__dict__, "mobile": "+919000000001"}))
    db.session.commit()
    for spelling in ["+91 98765 43210", "098765 43210", "9876543210"]:
        mobile, found = service.search_by_mobile(spelling, "IN")
        assert mobile == "+919876543210"
        assert [s.id for s in found] == [second.id, first.id]
    assert other.id not in [s.id for s in found]


def test_search_rejects_what_is_not_a_phone_number(app_ctx):
    with pytest.raises(ValidationError) as info:
        service.search_by_mobile("12", "IN")
    assert "mobile" in info.value.fields


def test_status_counts(app_ctx):
    tid = book().tracking_id
    book()
    record_status_change(tid, "Picked Up", "Hub", None, actor="op1")
    db.session.commit()
    assert service.status_counts() == {"Booked": 1, "Picked Up": 1}


def test_every_reader_of_a_timeline_follows_its_one_order_and_one_held_from_rule(app_ctx):
    """Staff timeline, customer timelines (page, messages), the public document, the held-from query and the
    status-change core all read a timeline one way: by time, then by id for events of one instant."""
    import json
    from datetime import timedelta
    from types import SimpleNamespace

    from app.domain.status import held_from_timeline
    from app.domain.timeutil import utcnow
    from app.services.outbox.messages import load_facts
    from app.services.shipments.public_document import public_timeline, public_tracking_document

    shipment = book()
    record_status_change(shipment.tracking_id, "Picked Up", "Hub", None, actor="op1")
    # Two events of one instant, then a hold: the later written of the two (the larger id) is the one held from.
    tied, later = utcnow() + timedelta(minutes=1), utcnow() + timedelta(minutes=2)
    for status, at in (("Out for Delivery", tied), ("In Transit", tied), ("On Hold", later)):
        db.session.add(TrackingEvent(shipment_id=shipment.id, status=status, location="Kochi Hub", actor="op1",
                                     occurred_at=at))
        db.session.flush()
    db.session.execute(Shipment.__table__.update().where(Shipment.__table__.c.id == shipment.id)
                       .values(status="On Hold", updated_at=later))
    db.session.commit()
    expected = ["Booked", "Picked Up", "Out for Delivery", "In Transit", "On Hold"]
    shipment = service.find_shipment(shipment.tracking_id)

    assert [e.status for e in service.timeline(shipment)] == expected
    assert [e.status for e in service.customer_timelines([shipment.id])[shipment.id]] == expected
    assert [e.status for e in public_timeline(shipment.id)] == expected
    assert [e.status for e in load_facts([SimpleNamespace(shipment_id=shipment.id)]).events[shipment.id]] == expected
    with app_ctx.test_request_context():  # the document holds the tracking page's URL
        document = public_tracking_document(shipment.tracking_id)
    assert [e["status"] for e in json.loads(document.body)["events"]] == expected

    assert service.held_from(shipment) == held_from_timeline(expected) == "In Transit"
    assert service.next_statuses(shipment) == ["In Transit", "RTO Initiated"]  # held from In Transit
    with pytest.raises(InvalidTransition) as refused:  # the core asks the same query
        record_status_change(shipment.tracking_id, "Out for Delivery", "Hub", None, actor="op1")
    assert refused.value.extra["allowed"] == ["In Transit", "RTO Initiated"]
    db.session.rollback()
    record_status_change(shipment.tracking_id, "In Transit", "Kochi Hub", None, actor="op1")
