"""Realistic demo data, inserted in bulk (no emails are queued for history).

PostgreSQL is fed with COPY (a million shipments and five million events in a few minutes); other databases
get multi-row INSERTs. Both paths insert the same kind of rows.
"""
from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import insert, select, text

from app.domain.status import Status
from app.domain.timeutil import as_utc, utcnow
from app.domain.tracking_ids import new_tracking_id
from app.extensions import db
from app.models import Shipment, TrackingEvent

FIRST_NAMES = ["Aarav", "Priya", "Rahul", "Ananya", "Vikram", "Sneha", "Arjun", "Kavya", "Rohan", "Meera",
               "Sai", "Divya", "Karthik", "Lakshmi", "Naveen", "Pooja", "Suresh", "Harini", "Manoj", "Asha"]
LAST_NAMES = ["Sharma", "Reddy", "Iyer", "Nair", "Patel", "Rao", "Gupta", "Das", "Menon", "Varma", "Khan",
              "Singh", "Joshi", "Pillai", "Kumar"]
CITIES = ["Hyderabad", "Vijayawada", "Visakhapatnam", "Rajahmundry", "Bhimavaram", "Chennai", "Bengaluru",
          "Mumbai", "Pune", "Kolkata", "Delhi", "Kochi", "Guntur", "Nellore", "Tirupati", "Kakinada"]
NAMES = [f"{first} {last}" for first in FIRST_NAMES for last in LAST_NAMES]
HUBS = [f"{city} Hub" for city in CITIES]
# Per destination: the PIN prefix of its sorting district and the typical hours from pick-up to delivery, so that
# estimated delivery has something real to learn (near cities are quick, far ones slow and more variable).
DESTINATIONS: dict[str, tuple[str, float, float]] = {
    "Hyderabad": ("500", 30, 0.20), "Vijayawada": ("520", 40, 0.22), "Visakhapatnam": ("530", 52, 0.25),
    "Rajahmundry": ("533", 48, 0.25), "Bhimavaram": ("534", 56, 0.30), "Chennai": ("600", 44, 0.22),
    "Bengaluru": ("560", 38, 0.20), "Mumbai": ("400", 60, 0.25), "Pune": ("411", 58, 0.25),
    "Kolkata": ("700", 84, 0.30), "Delhi": ("110", 78, 0.28), "Kochi": ("682", 66, 0.28),
    "Guntur": ("522", 42, 0.22), "Nellore": ("524", 46, 0.25), "Tirupati": ("517", 50, 0.25),
    "Kakinada": ("533", 54, 0.28),
}
DELAY_SHARE = 0.12  # parcels held up somewhere (weather, a hub backlog, a wrong sort)
# A share of bookings go to a number seen before (repeat customers), so a mobile search finds one or more.
REPEAT_CUSTOMER_SHARE = 0.2
_RECENT_MOBILES = 500

SHIPMENT_COLUMNS = ("tracking_id", "sender_name", "receiver_name", "mobile", "email", "destination", "status",
                    "created_at", "updated_at")
EVENT_COLUMNS = ("shipment_id", "status", "location", "note", "actor", "occurred_at")


def _mobile(rng: random.Random) -> str:
    # Indian numbers starting with 9 are all mobiles; 6, 7 and 8 also begin landlines written without their 0
    # (0712… is +91 712…), which bookings refuse.
    return f"+919{rng.randrange(10**8, 10**9)}"


def demo_history(rng: random.Random, events: int) -> list[tuple[str, str]]:
    """A valid (status, location) history starting with Booked, of events ± 2 steps (so `events` on average)."""
    length = rng.randint(max(1, events - 2), max(1, events + 2))
    hubs = max(1, length - 4)
    path = [Status.PICKED_UP, *[Status.IN_TRANSIT] * hubs, Status.OUT_FOR_DELIVERY, Status.DELIVERED]
    origin = rng.choice(CITIES)
    steps = [(Status.BOOKED.value, "Origin Facility")]
    for status in path[: length - 1]:
        location = origin if status == Status.PICKED_UP else rng.choice(HUBS)
        steps.append((status.value, location))
    return steps


@dataclass
class _DemoShipment:
    row: dict
    history: list[tuple[tuple[str, str], datetime]]

    def event_rows(self, shipment_id: int) -> Iterator[tuple]:
        for (status, location), at in self.history:
            yield (shipment_id, status, location, None, "system" if status == Status.BOOKED else "seed", at)


class _DemoGenerator:
    def __init__(self, rng: random.Random, events: int) -> None:
        self.rng = rng
        self.events = events
        self.recent_mobiles: list[str] = []

    def mobile(self) -> str:
        if self.recent_mobiles and self.rng.random() < REPEAT_CUSTOMER_SHARE:
            return self.rng.choice(self.recent_mobiles)
        mobile = _mobile(self.rng)
        if len(self.recent_mobiles) < _RECENT_MOBILES:
            self.recent_mobiles.append(mobile)
        else:
            self.recent_mobiles[self.rng.randrange(_RECENT_MOBILES)] = mobile
        return mobile

    def shipments(self, count: int, now: datetime, taken: set[str]) -> list[_DemoShipment]:
        """`count` shipments whose tracking IDs are not in `taken` (which grows)."""
        rng = self.rng
        made = []
        for _ in range(count):
            tracking_id = _fresh_tracking_id(taken)
            history = demo_history(rng, self.events)
            city = rng.choice(CITIES)
            start = now - timedelta(days=rng.randint(1, 60), minutes=rng.randint(0, 1440))
            times = _step_times(rng, start, len(history), DESTINATIONS[city])
            if times[-1] > now:  # long histories booked recently: keep every event in the past
                shift = times[-1] - now + timedelta(minutes=rng.randint(1, 120))
                times = [at - shift for at in times]
            made.append(_DemoShipment(
                row={
                    "tracking_id": tracking_id, "sender_name": rng.choice(NAMES),
                    "receiver_name": rng.choice(NAMES), "mobile": self.mobile(),
                    "email": f"customer{rng.randrange(10**6)}@example.com",
                    "destination": _destination(rng, city),
                    "status": history[-1][0], "created_at": times[0], "updated_at": times[-1],
                },
                history=list(zip(history, times, strict=True)),
            ))
        return made


def _destination(rng: random.Random, city: str) -> str:
    """Half the addresses carry a PIN code (as most real ones do), the rest only the city."""
    if rng.random() < 0.5:
        return city
    return f"{rng.randint(1, 200)} Main Road, {city} {DESTINATIONS[city][0]}{rng.randint(1, 99):03d}"


def _step_times(rng: random.Random, start: datetime, steps: int, profile: tuple[str, float, float]) -> list[datetime]:
    """When each step of a history happened: pick-up a few hours after booking, hubs spread over the area's
    transit time (log-normal around its typical hours, sometimes delayed), out for delivery the same morning."""
    _pin, typical_hours, spread = profile
    transit = typical_hours * math.exp(rng.gauss(0, spread))
    if rng.random() < DELAY_SHARE:
        transit += rng.uniform(12, 60)
    picked_up = start + timedelta(hours=rng.uniform(2, 10))
    delivered = picked_up + timedelta(hours=transit)
    out_for_delivery = delivered - timedelta(hours=rng.uniform(1.5, 8))
    hubs = max(steps - 4, 1)
    hub_times = sorted(picked_up + (out_for_delivery - picked_up) * rng.uniform(0.1, 0.9) for _ in range(hubs))
    schedule = [start, picked_up, *hub_times, out_for_delivery, delivered]
    return schedule[:steps]


def seed_demo(shipments: int, events: int, seed: int | None = None, batch_size: int | None = None,
              progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Insert `shipments` shipments with `events` events each on average.

    Returns (shipments inserted, events inserted). Commits per batch so memory stays flat at any size; a
    tracking ID that is already taken is drawn again, so exactly `shipments` are inserted.
    """
    dialect = db.session.get_bind().dialect.name
    generator = _DemoGenerator(random.Random(seed), events)
    if dialect == "postgresql":
        made = _seed_postgresql(generator, shipments, batch_size or 20_000, progress)
        db.session.execute(text("ANALYZE shipments"))
        db.session.execute(text("ANALYZE tracking_events"))
        db.session.commit()
        return made
    return _seed_generic(generator, shipments, batch_size or 2000, progress)


def _seed_generic(generator: _DemoGenerator, shipments: int, batch_size: int,
                  progress: Callable[[int], None] | None) -> tuple[int, int]:
    total_events = 0
    for batch in _batches(shipments, batch_size):
        taken: set[str] = set()
        made = generator.shipments(batch, utcnow(), taken)
        _redraw_existing(made, taken, _existing_tracking_ids_orm)
        ids = db.session.scalars(
            insert(Shipment).returning(Shipment.id, sort_by_parameter_order=True), [m.row for m in made]
        ).all()
        event_rows = [dict(zip(EVENT_COLUMNS, row, strict=True))
                      for shipment_id, shipment in zip(ids, made, strict=True)
                      for row in shipment.event_rows(shipment_id)]
        db.session.execute(insert(TrackingEvent), event_rows)
        db.session.commit()
        total_events += len(event_rows)
        if progress:
            progress(batch)
    return shipments, total_events


def _seed_postgresql(generator: _DemoGenerator, shipments: int, batch_size: int,
                     progress: Callable[[int], None] | None) -> tuple[int, int]:
    """COPY straight into the tables: IDs come from the table's sequence up front, and tracking IDs that exist
    already are drawn again before the batch is sent (the seeder is the only writer it has to avoid)."""
    inserted = total_events = 0
    for batch in _batches(shipments, batch_size):
        taken: set[str] = set()
        made = generator.shipments(batch, utcnow(), taken)
        raw = db.session.connection().connection.driver_connection
        with raw.cursor() as cursor:
            _redraw_existing(made, taken, lambda ids, cursor=cursor: _existing_tracking_ids_pg(cursor, ids))
            cursor.execute("SELECT nextval(pg_get_serial_sequence('shipments', 'id')) "
                           "FROM generate_series(1, %s)", (batch,))
            ids = [row[0] for row in cursor.fetchall()]
            _copy(cursor, "shipments", ("id", *SHIPMENT_COLUMNS),
                  ((shipment_id, *(shipment.row[c] for c in SHIPMENT_COLUMNS))
                   for shipment_id, shipment in zip(ids, made, strict=True)))
            event_rows = [row for shipment_id, shipment in zip(ids, made, strict=True)
                          for row in shipment.event_rows(shipment_id)]
            _copy(cursor, "tracking_events", EVENT_COLUMNS, event_rows)
            total_events += len(event_rows)
        db.session.commit()
        inserted += batch
        if progress:
            progress(batch)
    return inserted, total_events


def _copy(cursor, table: str, columns: tuple[str, ...], rows: Iterable[tuple]) -> None:
    """COPY rows into `table` through psycopg2's copy_expert, in COPY's text format (one batch in memory)."""
    buffer = io.StringIO()
    for row in rows:
        buffer.write("\t".join(_copy_field(value) for value in row))
        buffer.write("\n")
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def _copy_field(value) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, datetime):
        return as_utc(value).isoformat()
    text_value = str(value)
    if any(c in text_value for c in "\\\t\n\r"):
        text_value = (text_value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
                      .replace("\r", "\\r"))
    return text_value


def _redraw_existing(made: list[_DemoShipment], taken: set[str],
                     existing: Callable[[list[str]], set[str]]) -> None:
    """Draw again every tracking ID that is already in the table (the seeder is the only writer it avoids)."""
    clashes = existing([m.row["tracking_id"] for m in made])
    while clashes:
        for shipment in made:
            if shipment.row["tracking_id"] in clashes:
                shipment.row["tracking_id"] = _fresh_tracking_id(taken)
        clashes = existing([m.row["tracking_id"] for m in made])


def _existing_tracking_ids_pg(cursor, tracking_ids: list[str]) -> set[str]:
    cursor.execute("SELECT tracking_id FROM shipments WHERE tracking_id = ANY(%s)", (tracking_ids,))
    return {row[0] for row in cursor.fetchall()}


def _existing_tracking_ids_orm(tracking_ids: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(tracking_ids), 500):  # SQLite caps the number of bound parameters
        chunk = tracking_ids[start:start + 500]
        found.update(db.session.scalars(select(Shipment.tracking_id).where(Shipment.tracking_id.in_(chunk))))
    return found


def _fresh_tracking_id(taken: set[str]) -> str:
    tracking_id = new_tracking_id()
    while tracking_id in taken:
        tracking_id = new_tracking_id()
    taken.add(tracking_id)
    return tracking_id


def _batches(total: int, size: int) -> Iterator[int]:
    while total > 0:
        yield min(size, total)
        total -= size
