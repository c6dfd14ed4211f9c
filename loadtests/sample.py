"""What the Locust users share: the seeded sample, booking payloads and an operator's choice of next status.

The benchmark writes the sample (loadtests/.work/sample.json, or $WAYBILL_SAMPLE) after seeding, straight from
the database: tracking IDs, mobile numbers of existing shipments, shipments that can still move, and the
operator's credentials. No app endpoint is needed for it.
"""
from __future__ import annotations

import json
import os
import random
import sys
from functools import cache
from pathlib import Path
from urllib.parse import quote

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # so `app.domain.status` (the one state machine) imports from any cwd
    sys.path.insert(0, str(ROOT))

from app.domain.status import Status, allowed_next_statuses  # noqa: E402

DEFAULT_SAMPLE = ROOT / "loadtests" / ".work" / "sample.json"
CITIES = ["Hyderabad", "Vijayawada", "Visakhapatnam", "Chennai", "Bengaluru", "Mumbai", "Pune", "Kolkata",
          "Delhi", "Kochi", "Guntur", "Nellore", "Tirupati", "Kakinada"]
NAMES = ["Aarav Sharma", "Priya Reddy", "Rahul Iyer", "Ananya Nair", "Vikram Patel", "Sneha Rao",
         "Arjun Gupta", "Kavya Das", "Rohan Menon", "Meera Varma", "Sai Khan", "Divya Singh"]


@cache
def load_sample() -> dict:
    path = Path(os.environ.get("WAYBILL_SAMPLE", DEFAULT_SAMPLE))
    try:
        sample = json.loads(path.read_text())
    except FileNotFoundError:
        raise SystemExit(f"No sample at {path}: run loadtests/bench.sh (or write the sample) first.") from None
    for key in ("tracking_ids", "mobiles", "active_tracking_ids", "operator"):
        if key not in sample:
            raise SystemExit(f"The sample at {path} has no {key!r}.")
    return sample


def think_scale() -> float:
    """WAYBILL_THINK_SCALE stretches (>1) or shrinks (<1) every think time of the mixed scenario."""
    return float(os.environ.get("WAYBILL_THINK_SCALE", "1") or 1)


def mobile_as_typed(e164: str, rng: random.Random) -> str:
    """An Indian E.164 number written the ways people type it: +91 98765 43210, 098765 43210 or 9876543210."""
    national = e164[3:] if e164.startswith("+91") else e164.lstrip("+")
    style = rng.random()
    if style < 0.4:
        return national
    if style < 0.7:
        return f"+91 {national[:5]} {national[5:]}"
    if style < 0.85:
        return f"0{national[:5]} {national[5:]}"
    return e164


def search_path(e164: str, rng: random.Random) -> str:
    return "/search/" + quote(mobile_as_typed(e164, rng), safe="+")


def fresh_mobile(rng: random.Random) -> str:
    # A mobile number (every Indian number starting with 9 is one): a landline booking is refused with a 400.
    return f"+919{rng.randrange(10**8, 10**9)}"


def booking(rng: random.Random) -> dict:
    """A booking as the landing page's API client sends it; a third go to numbers that already have shipments."""
    sample = load_sample()
    mobile = rng.choice(sample["mobiles"]) if rng.random() < 0.33 else fresh_mobile(rng)
    sender, receiver = rng.sample(NAMES, 2)
    return {
        "sender_name": sender,
        "receiver_name": receiver,
        "mobile": mobile_as_typed(mobile, rng),
        "email": f"load{rng.randrange(10**9)}@example.com",
        "destination": rng.choice(CITIES),
    }


def held_from(events: list[dict]) -> str | None:
    for event in reversed(events):
        if event["status"] != Status.ON_HOLD:
            return event["status"]
    return None


def choose_next_status(status: str, events: list[dict], rng: random.Random) -> str | None:
    """What an operator would do next: mostly move the parcel forward; sometimes hold, fail or cancel it.
    None when the shipment is final."""
    allowed = allowed_next_statuses(status, held_from(events) if status == Status.ON_HOLD else None)
    if not allowed:
        return None
    rare = {Status.ON_HOLD: 0.03, Status.CANCELLED: 0.02, Status.DELIVERY_ATTEMPTED: 0.15,
            Status.RETURNED_TO_SENDER: 0.2}
    forward = [s for s in allowed if s not in rare]
    for status_name, chance in rare.items():
        if status_name in allowed and (not forward or rng.random() < chance):
            return str(status_name)
    if Status.IN_TRANSIT in forward and Status.OUT_FOR_DELIVERY in forward:
        return Status.IN_TRANSIT.value if rng.random() < 0.4 else Status.OUT_FOR_DELIVERY.value
    return str(forward[0] if forward else allowed[0])


def location_for(status: str, rng: random.Random) -> str:
    city = rng.choice(CITIES)
    return city if status in (Status.DELIVERED, Status.OUT_FOR_DELIVERY, Status.DELIVERY_ATTEMPTED) \
        else f"{city} Hub"
