"""The public "show full details" check: the visitor proves they know the last 4 digits of the mobile.

Rules (DESIGN.md rule 9): the answer is exactly 4 digits (else ValidationError, nothing written). After
MAX_MISSES wrong answers for one shipment within MISS_WINDOW, the check is locked for that shipment for
LOCK_DURATION: every answer, right or wrong, is then refused with TooManyAttempts (429) without being compared.
A right answer clears the count. The count lives in the database (one row per shipment, locked while it is
changed), so it holds across processes and containers. The caller commits, whatever the outcome: a miss is a
fact to keep.
"""
from __future__ import annotations

import hmac
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import ngettext
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.errors import TooManyAttempts, ValidationError
from app.extensions import db
from app.models import DetailCheck, Shipment
from app.services.shipments import find_shipment
from app.timeutil import as_utc, utcnow

MAX_MISSES = 5
MISS_WINDOW = timedelta(minutes=15)
LOCK_DURATION = timedelta(minutes=15)
FIELD = "mobile_last4"
_FOUR_DIGITS = re.compile(r"[0-9]{4}")
_INSERT = {name: insert(DetailCheck.__table__).on_conflict_do_nothing(index_elements=["shipment_id"])
           for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}


@dataclass(frozen=True)
class DetailProof:
    shipment: Shipment
    unlocked: bool
    misses_left: int  # before the check locks (0 once it has)
    retry_after: int | None = None  # seconds until the lock ends, when this answer locked it


def check_mobile_last4(tracking_id: str, answer: str, now: datetime | None = None) -> DetailProof:
    """Compare `answer` with the last 4 digits of the shipment's mobile, counting misses per shipment."""
    digits = answer.strip()
    if not _FOUR_DIGITS.fullmatch(digits):
        raise ValidationError(fields={FIELD: "Enter the last 4 digits of the receiver's mobile number."})
    shipment = find_shipment(tracking_id)
    now = now or utcnow()
    check = _locked_row(shipment.id)
    if check.locked_until is not None:
        if as_utc(check.locked_until) > now:
            raise _locked(as_utc(check.locked_until) - now)
        check.locked_until, check.misses, check.window_started_at = None, 0, None
    if hmac.compare_digest(digits, shipment.mobile[-4:]):
        check.misses, check.window_started_at = 0, None
        db.session.flush()
        return DetailProof(shipment, unlocked=True, misses_left=MAX_MISSES)
    if check.window_started_at is None or as_utc(check.window_started_at) + MISS_WINDOW <= now:
        check.misses, check.window_started_at = 1, now
    else:
        check.misses += 1
    retry_after = None
    if check.misses >= MAX_MISSES:
        check.locked_until, check.misses, check.window_started_at = now + LOCK_DURATION, 0, None
        retry_after = _seconds(LOCK_DURATION)
    db.session.flush()
    misses_left = 0 if retry_after else MAX_MISSES - check.misses
    return DetailProof(shipment, unlocked=False, misses_left=misses_left, retry_after=retry_after)


def _locked_row(shipment_id: int) -> DetailCheck:
    """This shipment's row, created if missing and locked until the commit (SQLite: the INSERT has already
    taken the database's write lock, so concurrent checks queue up behind it just the same)."""
    connection = db.session.connection()
    connection.execute(_INSERT[connection.dialect.name], {"shipment_id": shipment_id, "misses": 0})
    return db.session.scalars(
        select(DetailCheck).where(DetailCheck.shipment_id == shipment_id)
        .with_for_update().execution_options(populate_existing=True)
    ).one()


def _locked(remaining: timedelta) -> TooManyAttempts:
    seconds = _seconds(remaining)
    minutes = max(1, math.ceil(seconds / 60))
    return TooManyAttempts(
        ngettext("Too many wrong answers for this shipment: try again in %(num)d minute.",
                 "Too many wrong answers for this shipment: try again in %(num)d minutes.", minutes),
        retry_after=seconds)


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))
