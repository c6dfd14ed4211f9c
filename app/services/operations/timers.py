"""Timers (rule 13): steps that must happen later, as rows with a due time, each run exactly once.

Rules:
- `schedule` writes a step in the caller's transaction (so a step exists exactly when the change that asked for it
  committed). Its `key` is unique: scheduling a key again moves the pending (or cancelled) step to the new time;
  a step already done stays done.
- `run_next` claims the earliest due step and applies it in ONE transaction: the claim (FOR UPDATE SKIP LOCKED on
  PostgreSQL, so processes never wait on each other or take the same row), the handler's effect, and the step's
  completion commit together. A process killed in the middle holds nothing afterwards (its transaction dies with
  its connection) and has written nothing: the step is still pending and the next look runs it. Two processes can
  never both complete it. No lease is needed, because nothing a step does leaves the database before the commit
  (messages go through the outbox).
- A handler that raises is rolled back; the step is tried again after a backoff (TIMER_RETRY_SECONDS × attempts)
  and ends `failed` after TIMER_MAX_ATTEMPTS, with its error kept (no personal data: the exception's type and
  first line).
- A handler decides for itself whether its step still applies (the parcel may have moved on since it was
  scheduled) and does nothing when it does not: completing the step is then the whole effect.
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sqlalchemy import select, update

from app.db.dialects import dialect_insert
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import Timer
from app.models.timer import TIMER_ERROR_MAX

log = logging.getLogger(__name__)

TIMER_RETRY_SECONDS = 30.0
_TIMERS = Timer.__table__
Handler = Callable[[Timer, datetime], None]


def schedule(kind: str, key: str, due_at: datetime, *, shipment_id: int | None = None,
             ndr_id: int | None = None) -> None:
    """Have the step `kind` run at `due_at` (in the caller's transaction). See the module's rules for a `key` that
    exists already."""
    values = {"kind": kind, "key": key, "due_at": due_at, "shipment_id": shipment_id, "ndr_id": ndr_id,
              "state": "pending", "attempts": 0, "created_at": utcnow()}
    statement = dialect_insert(_TIMERS).values(values)
    statement = statement.on_conflict_do_update(
        index_elements=["key"],
        set_={"due_at": due_at, "state": "pending", "attempts": 0, "last_error": None, "kind": kind},
        where=_TIMERS.c.state != "done")
    db.session.execute(statement)


def cancel(*, key: str | None = None, ndr_id: int | None = None, shipment_id: int | None = None) -> int:
    """Cancel the pending steps with this key, or of this report, or of this parcel (in the caller's transaction);
    how many were."""
    conditions = [_TIMERS.c.state == "pending"]
    if key is not None:
        conditions.append(_TIMERS.c.key == key)
    if ndr_id is not None:
        conditions.append(_TIMERS.c.ndr_id == ndr_id)
    if shipment_id is not None:
        conditions.append(_TIMERS.c.shipment_id == shipment_id)
    if len(conditions) == 1:
        raise ValueError("cancel needs a key, a report or a parcel")
    return db.session.execute(update(_TIMERS).where(*conditions).values(state="cancelled")).rowcount


def pending_due_at(key: str) -> datetime | None:
    """When the pending step `key` is due, or None when there is none pending."""
    return db.session.scalar(select(Timer.due_at).where(Timer.key == key, Timer.state == "pending"))


def process_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


def run_next(now: datetime, handlers: Mapping[str, Handler], *, max_attempts: int) -> Timer | None:
    """Claim the earliest step due at `now`, apply it and complete it, committed together; the step, or None when
    nothing is due. A failing step is rolled back and put off (see the module's rules); it is returned too."""
    claim = (select(Timer).where(Timer.state == "pending", Timer.due_at <= now)
             .order_by(Timer.due_at, Timer.id).limit(1))
    if db.session.get_bind().dialect.name == "postgresql":
        claim = claim.with_for_update(skip_locked=True)
    timer = db.session.scalars(claim).first()
    if timer is None:
        db.session.rollback()
        return None
    timer_id, kind, attempts = timer.id, timer.kind, timer.attempts
    try:
        handler = handlers.get(kind)
        if handler is None:
            raise LookupError(f"no handler for timer kind {kind!r}")
        handler(timer, now)
        timer.state, timer.done_at, timer.done_by = "done", utcnow(), process_name()
        db.session.commit()
        return timer
    except Exception as exc:  # noqa: BLE001 - one step's failure is recorded on it; the others still run
        db.session.rollback()
        error = f"{type(exc).__name__}: {(str(exc).splitlines() or [''])[0]}"[:TIMER_ERROR_MAX]
        failed = attempts + 1 >= max_attempts
        log.warning("Timer %s (%s) failed (attempt %d of %d)%s: %s", timer_id, kind, attempts + 1, max_attempts,
                    "; giving up" if failed else "", error)
        db.session.execute(update(_TIMERS).where(_TIMERS.c.id == timer_id, _TIMERS.c.state == "pending").values(
            attempts=attempts + 1, last_error=error, state="failed" if failed else "pending",
            due_at=now + timedelta(seconds=TIMER_RETRY_SECONDS * (attempts + 1))))
        db.session.commit()
        return db.session.get(Timer, timer_id)
