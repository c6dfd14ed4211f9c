"""A courier's shift as the courier app needs it: the phone shares its position only inside the shift, and it
must know the shift without a connection, so the app's page carries it."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from app.extensions import db
from app.models import CourierProfile


@dataclass(frozen=True)
class Shift:
    start: time  # local time (DISPLAY_TIMEZONE); a shift that ends before it starts runs past midnight
    end: time


def courier_shift(user_id: int) -> Shift | None:
    """The shift of the courier `user_id`, None when the account has no courier profile (no shift: the app
    shares no position)."""
    profile = db.session.get(CourierProfile, user_id)
    if profile is None:
        return None
    return Shift(start=profile.shift_start, end=profile.shift_end)
