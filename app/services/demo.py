"""Realistic demo data, inserted in bulk (no emails are queued for history)."""
from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from datetime import timedelta

from sqlalchemy import insert

from app.extensions import db
from app.models import Shipment, TrackingEvent
from app.services.status import Status
from app.services.tracking_ids import new_tracking_id
from app.timeutil import utcnow

FIRST_NAMES = ["Aarav", "Priya", "Rahul", "Ananya", "Vikram", "Sneha", "Arjun", "Kavya", "Rohan", "Meera",
               "Sai", "Divya", "Karthik", "Lakshmi", "Naveen", "Pooja", "Suresh", "Harini", "Manoj", "Asha"]
LAST_NAMES = ["Sharma", "Reddy", "Iyer", "Nair", "Patel", "Rao", "Gupta", "Das", "Menon", "Varma", "Khan",
              "Singh", "Joshi", "Pillai", "Kumar"]
CITIES = ["Hyderabad", "Vijayawada", "Visakhapatnam", "Rajahmundry", "Bhimavaram", "Chennai", "Bengaluru",
          "Mumbai", "Pune", "Kolkata", "Delhi", "Kochi", "Guntur", "Nellore", "Tirupati", "Kakinada"]


def _name(rng: random.Random) -> str:
    return f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"


def _mobile(rng: random.Random) -> str:
    return f"+91{rng.choice('6789')}{rng.randrange(10**8, 10**9)}"


def demo_history(rng: random.Random, events: int) -> list[tuple[str, str]]:
    """A valid (status, location) history starting with Booked, of events ± 2 steps (so `events` on average)."""
    length = rng.randint(max(1, events - 2), max(1, events + 2))
    hubs = max(1, length - 4)
    path = [Status.PICKED_UP, *[Status.IN_TRANSIT] * hubs, Status.OUT_FOR_DELIVERY, Status.DELIVERED]
    origin = rng.choice(CITIES)
    steps = [(Status.BOOKED.value, "Origin Facility")]
    for status in path[: length - 1]:
        location = origin if status == Status.PICKED_UP else f"{rng.choice(CITIES)} Hub"
        steps.append((status.value, location))
    return steps


def seed_demo(shipments: int, events: int, seed: int | None = None, batch_size: int = 2000,
              progress: Callable[[int], None] | None = None) -> tuple[int, int]:
    """Insert `shipments` shipments with `events` events each on average.

    Returns (shipments inserted, events inserted). Commits per batch so memory stays flat at any size.
    """
    rng = random.Random(seed)
    total_events = 0
    for batch in _batches(shipments, batch_size):
        now = utcnow()
        rows, histories = [], []
        for _ in range(batch):
            history = demo_history(rng, events)
            start = now - timedelta(days=rng.randint(1, 60), minutes=rng.randint(0, 1440))
            times = [start + timedelta(hours=6 * i + rng.randint(0, 5)) for i in range(len(history))]
            rows.append({
                "tracking_id": new_tracking_id(), "sender_name": _name(rng), "receiver_name": _name(rng),
                "mobile": _mobile(rng), "email": f"customer{rng.randrange(10**6)}@example.com",
                "destination": rng.choice(CITIES), "status": history[-1][0],
                "created_at": times[0], "updated_at": times[-1],
            })
            histories.append(list(zip(history, times, strict=True)))
        ids = db.session.scalars(
            insert(Shipment).returning(Shipment.id, sort_by_parameter_order=True), rows
        ).all()
        event_rows = [
            {"shipment_id": shipment_id, "status": status, "location": location, "note": None,
             "actor": "system" if status == Status.BOOKED else "seed", "occurred_at": at}
            for shipment_id, history in zip(ids, histories, strict=True)
            for (status, location), at in history
        ]
        db.session.execute(insert(TrackingEvent), event_rows)
        db.session.commit()
        total_events += len(event_rows)
        if progress:
            progress(batch)
    return shipments, total_events


def _batches(total: int, size: int) -> Iterator[int]:
    while total > 0:
        yield min(size, total)
        total -= size
