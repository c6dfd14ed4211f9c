"""The worker's claims on the outbox table: claim due rows with a lease, then settle each one.

A claim moves rows to `sending`, counts the attempt and sets `lease_until`. The lease timestamp doubles as
the claim's fence: settling a row (sent, failed, released) only succeeds while the row still carries the lease
this worker wrote, so a worker that outlived its lease cannot overwrite the work of the one that took over.
These functions run statements in the caller's session; the worker commits after each of them.
"""
from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, false, not_, or_, select, update
from sqlalchemy.sql.elements import ColumnElement

from app.domain.timeutil import as_utc, utcnow
from app.extensions import db
from app.models import Notification, TrackingEvent
from app.observability import metrics
from app.services.outbox import preferences

ERROR_MAX = 1000
_RETURNED = (Notification.id, Notification.channel, Notification.recipient, Notification.subject,
             Notification.shipment_id, Notification.event_id, Notification.created_at, Notification.attempts)


@dataclass(frozen=True)
class ClaimedMessage:
    """One claimed outbox row, detached from any session: what to render and who gets it."""

    id: int
    channel: str
    recipient: str
    subject: str
    shipment_id: int
    event_id: int
    created_at: datetime
    attempts: int  # including the attempt this claim is for
    lease_until: datetime


@dataclass(frozen=True)
class RetryPolicy:
    max_attempts: int
    backoff: float
    backoff_max: float
    jitter: float = 0.0  # up to this fraction is added to each wait (off by default: email waits are exact)

    def delay_after(self, attempts: int) -> float:
        """Seconds to wait after the attempts-th failure: backoff, 2×, 4×… capped at backoff_max, plus up to
        `jitter` of it at random. Jitter only lengthens a wait, so the schedule's total is a lower bound; it
        spreads out the retries of many rows that failed together (a receiver that was down)."""
        delay = min(self.backoff * 2 ** max(attempts - 1, 0), self.backoff_max)
        return delay * (1 + random.uniform(0, self.jitter)) if self.jitter > 0 else delay


MaxAttempts = int | Mapping[str, int]  # one limit for every channel, or a limit per channel


def _attempts_left(max_attempts: MaxAttempts) -> ColumnElement[bool]:
    """Rows that may be tried again: fewer attempts than their channel allows (a channel not named: none left)."""
    if isinstance(max_attempts, int):
        return Notification.attempts < max_attempts
    return or_(false(), *(and_(Notification.channel == name, Notification.attempts < limit)
                          for name, limit in sorted(max_attempts.items())))


def due_condition(now: datetime, max_attempts: MaxAttempts, reclaim_expired: bool = True,
                  due_by: datetime | None = None) -> ColumnElement[bool]:
    """Pending rows whose time has come (by `due_by`, default now), and (with reclaim_expired) rows whose
    sender's lease ran out (it died mid-send). Each half matches one partial index (see the Notification model)."""
    pending = and_(Notification.state == "pending", Notification.next_attempt_at <= (due_by or now))
    if not reclaim_expired:
        return pending
    return or_(
        pending,
        and_(Notification.state == "sending", Notification.lease_until < now, _attempts_left(max_attempts)),
    )


def claim_due(limit: int, lease_seconds: float, max_attempts: MaxAttempts, now: datetime | None = None,
              reclaim_expired: bool = True, due_by: datetime | None = None) -> list[ClaimedMessage]:
    """Atomically take up to `limit` due rows for this worker, oldest due first.

    Expired leases only appear when a process died mid-send, so a busy worker looks for them once per poll
    interval (reclaim_expired) rather than with every claim.

    PostgreSQL: SELECT … FOR UPDATE SKIP LOCKED in a CTE feeding the UPDATE, so concurrent workers take
    disjoint rows without waiting for each other. SQLite: one conditional UPDATE, which holds the database's
    single write lock while it re-checks the due condition, so no row can be taken twice.
    """
    now = now or utcnow()
    lease_until = now + timedelta(seconds=lease_seconds)
    if reclaim_expired:
        _bury_exhausted_leases(now, max_attempts)
    due = due_condition(now, max_attempts, reclaim_expired, due_by)
    candidates = (select(Notification.id).where(due)
                  .order_by(Notification.next_attempt_at, Notification.id).limit(limit))
    claim = update(Notification).values(state="sending", lease_until=lease_until,
                                        attempts=Notification.attempts + 1)
    if db.session.get_bind().dialect.name == "postgresql":
        locked = candidates.with_for_update(skip_locked=True).cte("due")
        claim = claim.where(Notification.id == locked.c.id)
    else:
        claim = claim.where(Notification.id.in_(candidates), due)
    rows = db.session.execute(claim.returning(*_RETURNED).execution_options(synchronize_session=False)).all()
    claimed = [
        ClaimedMessage(id=row.id, channel=row.channel, recipient=row.recipient, subject=row.subject,
                       shipment_id=row.shipment_id, event_id=row.event_id, created_at=as_utc(row.created_at),
                       attempts=row.attempts, lease_until=lease_until)
        for row in rows
    ]
    claimed.sort(key=lambda c: c.id)
    return claimed


def suppress_turned_off(claimed: list[ClaimedMessage]) -> list[ClaimedMessage]:
    """Mark `suppressed` the claimed rows whose recipient turned their channel off after they were queued, and
    return the rest (what may be sent). One statement; fenced by the claim's lease like every settlement."""
    if not claimed:
        return claimed
    event_status = (select(TrackingEvent.status).where(TrackingEvent.id == Notification.event_id)
                    .correlate(Notification).scalar_subquery())
    suppressed: set[int] = set()
    by_lease: dict[datetime, list[int]] = {}
    for item in claimed:
        by_lease.setdefault(item.lease_until, []).append(item.id)
    for lease_until, ids in by_lease.items():
        suppressed.update(db.session.execute(
            update(Notification)
            .where(Notification.id.in_(ids), Notification.state == "sending", Notification.lease_until == lease_until,
                   preferences.turned_off(Notification.shipment_id, Notification.channel, event_status))
            .values(state="suppressed", lease_until=None, last_error=preferences.SUPPRESSED_REASON)
            .returning(Notification.id)
            .execution_options(synchronize_session=False)
        ).scalars())
    for item in claimed:
        if item.id in suppressed:
            metrics.count_delivery(item.channel, "suppressed")
    return [item for item in claimed if item.id not in suppressed]


def _bury_exhausted_leases(now: datetime, max_attempts: MaxAttempts) -> None:
    """A row whose lease ran out on its last allowed attempt is not tried again: it goes to `dead`."""
    db.session.execute(
        update(Notification)
        .where(Notification.state == "sending", Notification.lease_until < now,
               not_(_attempts_left(max_attempts)))
        .values(state="dead", lease_until=None,
                last_error="The sender stopped during the last allowed attempt (lease expired); not retried.")
        .execution_options(synchronize_session=False)
    )


def _fenced(claimed: ClaimedMessage) -> ColumnElement[bool]:
    return and_(Notification.id == claimed.id, Notification.state == "sending",
                Notification.lease_until == claimed.lease_until)


def mark_sent(claimed: ClaimedMessage, now: datetime | None = None) -> bool:
    """Record one delivered message (one small UPDATE, fenced by its lease); False if the lease was lost (another
    worker may have sent it too)."""
    result = db.session.execute(
        update(Notification).where(_fenced(claimed))
        .values(state="sent", sent_at=now or utcnow(), lease_until=None)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def mark_failed(claimed: ClaimedMessage, error: str, permanent: bool, policy: RetryPolicy,
                now: datetime | None = None) -> str | None:
    """Record a failed attempt: `dead` if permanent or out of attempts, else `pending` after the backoff.

    Returns the new state, or None if the lease had been lost.
    """
    now = now or utcnow()
    if permanent or claimed.attempts >= policy.max_attempts:
        state, next_attempt_at = "dead", now
        if not permanent:
            error = f"Gave up after {claimed.attempts} attempts. {error}"
    else:
        state, next_attempt_at = "pending", now + timedelta(seconds=policy.delay_after(claimed.attempts))
    result = db.session.execute(
        update(Notification).where(_fenced(claimed))
        .values(state=state, next_attempt_at=next_attempt_at, lease_until=None, last_error=error[:ERROR_MAX])
        .execution_options(synchronize_session=False)
    )
    return state if result.rowcount == 1 else None


def release(claimed: list[ClaimedMessage]) -> int:
    """Give back rows this worker claimed but did not try (it is stopping): due again at once, attempt uncounted."""
    released = 0
    for item in claimed:
        result = db.session.execute(
            update(Notification).where(_fenced(item))
            .values(state="pending", lease_until=None, attempts=Notification.attempts - 1)
            .execution_options(synchronize_session=False)
        )
        released += result.rowcount
    return released
