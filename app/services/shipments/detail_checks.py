"""The public "show full details" check: the visitor proves they know the last 4 digits of the mobile.

Rules (DESIGN.md rule 9): the answer is exactly 4 digits (else ValidationError, nothing written). Misses count
per shipment and client (the address the app sees), so one client's wrong answers never lock the real
recipient out: after CLIENT_MAX_MISSES wrong answers from one client within CLIENT_WINDOW, the check is locked
for that client and shipment for CLIENT_LOCK; a right answer clears that client's count. Across all clients, a
shipment takes at most SHIPMENT_MAX_MISSES wrong answers per SHIPMENT_WINDOW (a day): then the check is closed
for everyone until the day's window ends, and a right answer does not reset it, so guessing the 4 digits (1 in
10,000 a try) stays at most 30 in 10,000 (0.3 %) a day however many addresses a guesser has. While locked, every
answer, right or wrong, is refused with TooManyAttempts (429) without being compared. The counts live in the
database (rows locked while they change, the shipment's first), so they hold across processes and containers.
The caller commits, whatever the outcome: a miss is a fact to keep.
"""
from __future__ import annotations

import hashlib
import hmac
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from flask_babel import ngettext
from sqlalchemy import delete, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.domain.timeutil import as_utc, utcnow
from app.errors import TooManyAttempts, ValidationError
from app.extensions import db
from app.models import DetailCheck, Shipment
from app.services.shipments.queries import find_shipment

CLIENT_MAX_MISSES = 5
CLIENT_WINDOW = timedelta(minutes=15)
CLIENT_LOCK = timedelta(minutes=15)
SHIPMENT_MAX_MISSES = 30
SHIPMENT_WINDOW = timedelta(days=1)
FIELD = "mobile_last4"
_FOUR_DIGITS = re.compile(r"[0-9]{4}")
_INSERT = {name: insert(DetailCheck.__table__).on_conflict_do_nothing(index_elements=["shipment_id", "client_key"])
           for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}


@dataclass(frozen=True)
class DetailProof:
    shipment: Shipment
    unlocked: bool
    misses_left: int  # before the check locks for this client (0 once it has)
    retry_after: int | None = None  # seconds until the lock ends, when this answer locked it
    closed_for_everyone: bool = False  # this answer reached the shipment's ceiling (retry_after: its end)


def client_key(address: str | None) -> str:
    """A digest of the client's address: counters need to tell clients apart, not to know where they are."""
    return hashlib.sha256((address or "unknown").encode()).hexdigest()[:32]


def check_mobile_last4(tracking_id: str, answer: str, *, client: str | None,
                       now: datetime | None = None) -> DetailProof:
    """Compare `answer` with the last 4 digits of the shipment's mobile, counting misses per shipment and
    `client` (the address the app sees) and per shipment across all clients."""
    digits = answer.strip()
    if not _FOUR_DIGITS.fullmatch(digits):
        raise ValidationError(fields={FIELD: "Enter the last 4 digits of the receiver's mobile number."})
    shipment = find_shipment(tracking_id)
    now = now or utcnow()
    everyone = _locked_row(shipment.id, DetailCheck.ALL_CLIENTS)  # first: concurrent checks queue up here
    if _still_locked(everyone, now):
        raise _closed(as_utc(everyone.locked_until) - now)
    _forget_stale_clients(shipment.id, now)
    this_client = _locked_row(shipment.id, client_key(client))
    if _still_locked(this_client, now):
        raise _locked(as_utc(this_client.locked_until) - now)
    if hmac.compare_digest(digits, shipment.mobile[-4:]):
        this_client.misses, this_client.window_started_at = 0, None
        db.session.flush()
        return DetailProof(shipment, unlocked=True, misses_left=CLIENT_MAX_MISSES)
    client_locked = _count_miss(this_client, now, CLIENT_MAX_MISSES, CLIENT_WINDOW, CLIENT_LOCK)
    closed = _count_miss(everyone, now, SHIPMENT_MAX_MISSES, SHIPMENT_WINDOW, None)
    db.session.flush()
    if closed:
        return DetailProof(shipment, unlocked=False, misses_left=0,
                           retry_after=_seconds(as_utc(everyone.locked_until) - now), closed_for_everyone=True)
    if client_locked:
        return DetailProof(shipment, unlocked=False, misses_left=0, retry_after=_seconds(CLIENT_LOCK))
    misses_left = min(CLIENT_MAX_MISSES - this_client.misses, SHIPMENT_MAX_MISSES - everyone.misses)
    return DetailProof(shipment, unlocked=False, misses_left=misses_left)


def _still_locked(check: DetailCheck, now: datetime) -> bool:
    """True while the row's lock lasts; an ended lock starts a fresh count."""
    if check.locked_until is None:
        return False
    if as_utc(check.locked_until) > now:
        return True
    check.locked_until, check.misses, check.window_started_at = None, 0, None
    return False


def _count_miss(check: DetailCheck, now: datetime, limit: int, window: timedelta,
                lock_for: timedelta | None) -> bool:
    """One more miss on the row; True when it reaches `limit` and locks the row (for `lock_for`, or until the
    window ends when None)."""
    if check.window_started_at is None or as_utc(check.window_started_at) + window <= now:
        check.misses, check.window_started_at = 1, now
    else:
        check.misses += 1
    if check.misses < limit:
        return False
    check.locked_until = now + lock_for if lock_for else as_utc(check.window_started_at) + window
    check.misses, check.window_started_at = 0, None
    return True


def _forget_stale_clients(shipment_id: int, now: datetime) -> None:
    """Clients whose window has passed and who hold no lock count nothing any more: their rows go, so the table
    keeps only the clients of the last 15 minutes (the shipment's row is locked, so nobody else is here)."""
    db.session.execute(delete(DetailCheck).where(
        DetailCheck.shipment_id == shipment_id, DetailCheck.client_key != DetailCheck.ALL_CLIENTS,
        DetailCheck.window_started_at.is_(None) | (DetailCheck.window_started_at <= now - CLIENT_WINDOW),
        DetailCheck.locked_until.is_(None) | (DetailCheck.locked_until <= now),
    ).execution_options(synchronize_session=False))


def _locked_row(shipment_id: int, key: str) -> DetailCheck:
    """The row, created if missing and locked until the commit (SQLite: the INSERT has already taken the
    database's write lock, so concurrent checks queue up behind it just the same)."""
    connection = db.session.connection()
    connection.execute(_INSERT[connection.dialect.name], {"shipment_id": shipment_id, "client_key": key, "misses": 0})
    return db.session.scalars(
        select(DetailCheck).where(DetailCheck.shipment_id == shipment_id, DetailCheck.client_key == key)
        .with_for_update().execution_options(populate_existing=True)
    ).one()


def _closed(remaining: timedelta) -> TooManyAttempts:
    seconds = _seconds(remaining)
    hours = max(1, math.ceil(seconds / 3600))
    return TooManyAttempts(
        ngettext("Too many wrong answers for this shipment today: the check is closed for %(num)d hour.",
                 "Too many wrong answers for this shipment today: the check is closed for %(num)d hours.", hours),
        retry_after=seconds)


def _locked(remaining: timedelta) -> TooManyAttempts:
    seconds = _seconds(remaining)
    minutes = max(1, math.ceil(seconds / 60))
    return TooManyAttempts(
        ngettext("Too many wrong answers for this shipment: try again in %(num)d minute.",
                 "Too many wrong answers for this shipment: try again in %(num)d minutes.", minutes),
        retry_after=seconds)


def _seconds(delta: timedelta) -> int:
    return max(1, math.ceil(delta.total_seconds()))
