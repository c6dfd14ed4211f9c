"""Booking shipments: one at a time (the form, JSON, the API) or in bulk (the CSV import)."""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime

from flask_babel import gettext
from sqlalchemy import bindparam, null, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.db.prepared import PreparedStatement
from app.domain.parcels import PARCEL_FIELDS, Parcel
from app.domain.points import Point, Window
from app.domain.pricing import PRICING_FIELDS, RateCard
from app.domain.status import Status
from app.domain.timeutil import utcnow
from app.domain.tracking_ids import new_tracking_id
from app.errors import Conflict, Unprocessable, ValidationError
from app.extensions import db
from app.models import Shipment, TrackingEvent
from app.services.operations.promises import PromiseRules, given_promise, promise_for, promise_rules
from app.services.outbox import queueing as outbox
from app.services.outbox.webhooks import created_deliveries_insert_from, queue_webhook_deliveries
from app.services.planning.points import PLACEMENT_COLUMNS, Destination, Placement, place_destinations
from app.services.shipments import rates, serviceability
from app.services.shipments.pincodes import is_valid_pincode
from app.services.staff.audit import record_audit

ORIGIN_LOCATION = "Origin Facility"
_ID_ATTEMPTS = 5
# Bookings per set-based round (create_shipments): large enough that round trips stop mattering, small enough
# that a round's statements stay well inside SQLite's 32,766 bound parameters.
BULK_CHUNK = 1000
_SHIPMENTS, _EVENTS = Shipment.__table__, TrackingEvent.__table__


@dataclass(frozen=True)
class NewShipment:
    sender_name: str
    receiver_name: str
    mobile: str  # already E.164
    email: str | None  # already validated; None: the recipient has only a mobile (SMS only)
    destination: str
    language: str = "en"  # the booking's language: its emails speak it
    parcel: Parcel = Parcel()  # checked (app.domain.parcels.check_parcel)
    sender_mobile: str | None = None  # already E.164
    sender_email: str | None = None  # already validated
    charges: dict | None = None  # as priced (app.services.shipments.rates), with its rate card's version
    rate_card_version: int | None = None
    point: Point | None = None  # the booker's own destination point (checked: app.domain.points)
    window: Window | None = None  # the recipient's delivery window (checked: app.domain.points)
    promised_on: date | None = None  # the day an integrator promised (checked in checked_booking)
    promised_by: datetime | None = None  # set by checked_booking from promised_on; else from the promise table

    def destination_to_place(self) -> Destination:
        return Destination(self.destination, self.parcel.destination_pincode, self.point)


class BookingsRefused(ValidationError):
    """Some bookings of a batch cannot be booked: `refused` maps each one's index to its fields' problems."""

    def __init__(self, refused: dict[int, dict[str, str]]) -> None:
        super().__init__(f"{len(refused)} booking(s) cannot be booked.")
        self.refused = refused


def checked_booking(data: NewShipment, *, list_is_empty: bool | None = None,
                    card: RateCard | None = None) -> NewShipment:
    """A booking checked against the network and priced, ready to write: every way of booking goes through here.

    Rules: a PIN code the booker gave (the sender's, the destination's) must be in India Post's directory (400,
    naming the field); one only read from the destination text is dropped when it is not (an address holds other
    numbers). Then the network: an unserved destination, cash on delivery or express where they are not offered,
    is Unprocessable (422, app.services.shipments.serviceability); while the served list is empty everything is
    served, and once it is not, a booking must name its destination PIN code. Then the charges on the rate card
    in force (app.services.shipments.rates), kept with the card's version. Last, a promised day the booking
    names (an integrator's) must be today or later and within 60 days (400 naming `promised_by`); without one the
    promise comes from the promise table when the booking is written (app.services.operations.promises).
    `list_is_empty` and `card`: the caller looked already (a batch is checked against one list and priced on one
    card).
    """
    parcel = data.parcel
    problems = {name: gettext("%(pincode)s is not a PIN code in India Post's directory.", pincode=pin)
                for name in ("sender_pincode", "destination_pincode")
                if (pin := getattr(parcel, name)) is not None and not is_valid_pincode(pin)
                and not (name == "destination_pincode" and parcel.destination_pincode_derived)}
    if problems:
        raise ValidationError(" ".join(problems.values()), fields=problems)
    if parcel.destination_pincode is not None and not is_valid_pincode(parcel.destination_pincode):
        parcel = replace(parcel, destination_pincode=None, destination_pincode_derived=False)
    if parcel.destination_pincode is not None:
        serviceability.check_booking(parcel.destination_pincode, parcel.payment, parcel.service)
    elif not (serviceability.list_is_empty() if list_is_empty is None else list_is_empty):
        message = gettext("Give the destination's PIN code: we deliver to the PIN codes we serve only.")
        raise Unprocessable(message, fields={"destination_pincode": message})
    charges = rates.charges_for(**{name: getattr(parcel, name) for name in PRICING_FIELDS}, card=card)
    promised = given_promise(data.promised_on) if data.promised_on is not None else None
    return replace(data, parcel=parcel, charges=charges.as_dict(), rate_card_version=charges.rate_card_version,
                   promised_by=promised)


def create_shipment(data: NewShipment, actor: str = "customer", *, audit_details: dict | None = None) -> Shipment:
    """Book a shipment: a unique tracking ID, the first "Booked" event and the recipient's email, one unit.

    A tracking-ID collision is resolved by drawing again, race-free (INSERT … ON CONFLICT DO NOTHING).
    Rows are written with Core inserts (this is the busiest write path); the objects returned are
    transient copies of what was stored. A booking made by staff passes `audit_details` (how it came, such as
    {"via": "api", "api_key_id": 3}) and is audited (`shipment_created`) in the same unit; a customer's own
    booking is not a staff action and is not audited.
    """
    data = checked_booking(data)
    now = utcnow()
    (placement,) = place_destinations([data.destination_to_place()], now)
    values = _shipment_values(data, now, placement, promise_rules())
    if db.session.connection().dialect.name == "postgresql":
        shipment = _book_in_one_statement(values, actor)
    else:
        ((shipment_id, tracking_id),) = _book_many([values], actor, now)
        outbox.mark_outbox_changed(db.session)
        shipment = Shipment(id=shipment_id, tracking_id=tracking_id, **values)
    if audit_details is not None:
        record_audit("shipment_created", actor=actor, target_type="shipment", target_id=shipment.tracking_id,
                     details=audit_details)
    return shipment


def create_shipments(bookings: Sequence[NewShipment], actor: str) -> list[str]:
    """Book many shipments in the caller's transaction; their tracking IDs, in the order given.

    Each gets what create_shipment writes (a unique tracking ID, the "Booked" event, the recipient's email),
    all with one booking time, each placed on the map (app.services.planning.points, one query per chunk).
    Written set-based, a few multi-row statements per BULK_CHUNK bookings, so a large
    import costs round trips per chunk, not per row. A tracking-ID collision (with a stored ID, or a repeat
    draw within the chunk) draws again for the rows it hit only; Conflict if a row still has none after
    _ID_ATTEMPTS draws. Either every booking is written or the caller rolls the whole transaction back.
    """
    bookings = _checked_bookings(bookings)
    now = utcnow()
    tracking_ids: list[str] = []
    rules = promise_rules()
    for start in range(0, len(bookings), BULK_CHUNK):
        chunk_bookings = bookings[start:start + BULK_CHUNK]
        placements = place_destinations([data.destination_to_place() for data in chunk_bookings], now)
        chunk = [_shipment_values(data, now, placement, rules)
                 for data, placement in zip(chunk_bookings, placements, strict=True)]
        tracking_ids += [tracking_id for _shipment_id, tracking_id in _book_many(chunk, actor, now)]
    if tracking_ids:
        outbox.mark_outbox_changed(db.session)
    return tracking_ids


def _checked_bookings(bookings: Sequence[NewShipment]) -> list[NewShipment]:
    """Every booking of a batch through checked_booking, against one served list and one rate card;
    BookingsRefused naming every booking that cannot be booked."""
    list_is_empty, card = serviceability.list_is_empty(), rates.current_card()
    checked, refused = [], {}
    for index, data in enumerate(bookings):
        try:
            checked.append(checked_booking(data, list_is_empty=list_is_empty, card=card))
        except ValidationError as error:
            refused[index] = error.fields or {"row": error.message}
    if refused:
        raise BookingsRefused(refused)
    return checked


def _shipment_values(data: NewShipment, now, placement: Placement, rules: PromiseRules) -> dict:
    parcel = data.parcel
    window = data.window
    promised = data.promised_by
    if promised is None:  # the zone it was priced in (no destination PIN code: national, as its price)
        promised = promise_for(parcel.service, (data.charges or {}).get("zone", "national"), now, rules)
    return {
        "sender_name": data.sender_name, "receiver_name": data.receiver_name, "mobile": data.mobile,
        "email": data.email, "destination": data.destination, "status": Status.BOOKED.value,
        "created_at": now, "updated_at": now, "language": data.language,
        **{name: getattr(parcel, name) for name in PARCEL_FIELDS},
        "sender_mobile": data.sender_mobile, "sender_email": data.sender_email,
        "charges": data.charges, "rate_card_version": data.rate_card_version,
        **placement.values(),
        "window_from": window.start if window else None, "window_to": window.end if window else None,
        "promised_by": promised,
    }


# The columns a booking writes: the same for one booking (the prepared statement binds each) and for many.
BOOKING_COLUMNS = ("tracking_id", "sender_name", "receiver_name", "mobile", "email", "destination", "status",
                   "created_at", "updated_at", "language", "sender_mobile", "sender_email", *PARCEL_FIELDS,
                   "charges", "rate_card_version", *PLACEMENT_COLUMNS, "window_from", "window_to", "promised_by")


def _book_many(rows: list[dict], actor: str, now) -> list[tuple[int, str]]:
    """Shipments, their Booked events and their emails for `rows` (shipment values, at most BULK_CHUNK): three
    multi-row statements (more only after a tracking-ID collision). Returns (id, tracking_id) in row order."""
    connection = db.session.connection()
    stored = _insert_with_unique_tracking_ids(connection, rows)
    events = connection.execute(_INSERT_EVENTS, [
        {"shipment_id": shipment_id, "status": Status.BOOKED.value, "location": ORIGIN_LOCATION, "note": None,
         "customer_message": None, "actor": actor, "occurred_at": now} for shipment_id, _tracking_id in stored
    ]).all()
    event_ids = [event_id for event_id, _shipment_id in events]
    connection.execute(_QUEUE_EMAILS, {"event_ids": event_ids})
    queue_webhook_deliveries(event_ids)
    return stored


def _insert_with_unique_tracking_ids(connection, rows: list[dict]) -> list[tuple[int, str]]:
    """Insert the shipments of `rows`, each under a tracking ID no other shipment has: (id, tracking_id) in row
    order. ON CONFLICT DO NOTHING skips a row whose ID is taken (race-free, even against concurrent bookings),
    and only the skipped rows draw again."""
    insert = _INSERT_SHIPMENTS[connection.dialect.name]
    stored: list[tuple[int, str] | None] = [None] * len(rows)
    pending = list(range(len(rows)))
    for _ in range(_ID_ATTEMPTS):
        drawn: dict[str, int] = {}  # tracking ID -> row; a repeat within the chunk waits for the next round
        for index in pending:
            drawn.setdefault(new_tracking_id(), index)
        result = connection.execute(insert, [{**rows[index], "tracking_id": tracking_id}
                                             for tracking_id, index in drawn.items()])
        for shipment_id, tracking_id in result:
            stored[drawn[tracking_id]] = (shipment_id, tracking_id)
        pending = [index for index in pending if stored[index] is None]
        if not pending:
            return stored  # type: ignore[return-value]  # every row is set now
    raise Conflict("Could not allocate a tracking ID; please try again.")


def _book_in_one_statement(values: dict, actor: str) -> Shipment:
    """PostgreSQL: shipment, Booked event, its email and SMS rows and its webhook deliveries in one
    INSERT … RETURNING chain, one round trip, prepared once per connection (app.db.prepared). A tracking-ID
    collision inserts nothing at all (ON CONFLICT DO NOTHING feeds the rest) and draws again."""
    connection = db.session.connection()
    for _ in range(_ID_ATTEMPTS):
        tracking_id = new_tracking_id()
        row = _BOOKING.execute(connection, {
            "tracking_id": tracking_id, **values, "location": ORIGIN_LOCATION, "actor": actor,
            # psycopg2 adapts no dict: the charges go as JSON text, which the prepared parameter reads as json.
            "charges": None if values["charges"] is None else json.dumps(values["charges"]),
        }).first()
        if row is not None:
            outbox.mark_outbox_changed(db.session)
            return Shipment(id=row.shipment_id, tracking_id=tracking_id, **values)
    raise Conflict("Could not allocate a tracking ID; please try again.")


# Statements built once, values bound per call: building them per booking (and their cache keys) cost more
# than running them.
_INSERT_SHIPMENTS = {
    dialect: insert.on_conflict_do_nothing(index_elements=["tracking_id"])
    .returning(_SHIPMENTS.c.id, _SHIPMENTS.c.tracking_id)
    for dialect, insert in (("postgresql", pg_insert(_SHIPMENTS)), ("sqlite", sqlite_insert(_SHIPMENTS)))
}
_INSERT_EVENTS = _EVENTS.insert().returning(_EVENTS.c.id, _EVENTS.c.shipment_id)


def _queue_emails_statement():
    """The emails about the events listed in :event_ids (expanding), read back from the rows just written:
    one statement per chunk whose SQL is compiled once (a VALUES list of the rows costs more to compile than
    to run)."""
    email = (select(_EVENTS.c.shipment_id, _EVENTS.c.id.label("event_id"), _SHIPMENTS.c.tracking_id,
                    _EVENTS.c.status, _SHIPMENTS.c.email.label("recipient"), _EVENTS.c.occurred_at.label("due_at"))
             .join_from(_EVENTS, _SHIPMENTS, _SHIPMENTS.c.id == _EVENTS.c.shipment_id)
             .where(_EVENTS.c.id.in_(bindparam("event_ids", expanding=True)))
             .subquery("email"))
    return outbox.status_email_insert_from(email)


_QUEUE_EMAILS = _queue_emails_statement()


def _booking_statement():
    booked = (pg_insert(_SHIPMENTS).values({name: bindparam(name, type_=_SHIPMENTS.c[name].type)
                                             for name in BOOKING_COLUMNS})
              .on_conflict_do_nothing(index_elements=["tracking_id"])
              .returning(_SHIPMENTS.c.id, _SHIPMENTS.c.tracking_id, _SHIPMENTS.c.status, _SHIPMENTS.c.email,
                         _SHIPMENTS.c.mobile, _SHIPMENTS.c.created_at)
              .cte("booked"))
    first_event = (_EVENTS.insert().from_select(
        ["shipment_id", "status", "location", "note", "actor", "occurred_at"],
        select(booked.c.id, booked.c.status, bindparam("location"), null(), bindparam("actor"), booked.c.created_at),
    ).returning(_EVENTS.c.id, _EVENTS.c.shipment_id, _EVENTS.c.occurred_at).cte("first_event"))
    # The rows written by this statement are invisible to its own subqueries: the source carries the booking's
    # tracking ID, status and mobile, and no choices can exist yet.
    email = select(first_event.c.shipment_id, first_event.c.id.label("event_id"), booked.c.tracking_id,
                   booked.c.status, booked.c.email.label("recipient"), booked.c.mobile.label("mobile"),
                   first_event.c.occurred_at.label("due_at")).join_from(
        first_event, booked, booked.c.id == first_event.c.shipment_id).subquery("email")
    queued = outbox.status_email_insert_from(email, new_shipments=True).cte("queued")
    hooks = created_deliveries_insert_from(first_event).cte("hooks")
    return select(first_event.c.shipment_id, first_event.c.id.label("event_id")).add_cte(queued).add_cte(hooks)


_BOOKING = PreparedStatement("waybill_booking", _booking_statement())
