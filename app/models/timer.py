"""Timers (rule 13): something that must happen later, as a row with a due time."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

TIMER_KIND_MAX = 32
TIMER_KEY_MAX = 96
TIMER_STATE_MAX = 10
TIMER_ERROR_MAX = 500


class Timer(db.Model):
    """A step due at `due_at`, run by the job runner's `timers.run` (app/jobs/timers.py) exactly once across
    processes and restarts: the row is claimed FOR UPDATE SKIP LOCKED (PostgreSQL) in the transaction that applies
    the step's effect and marks it done, so a process killed mid-step leaves it pending for the next one.

    `kind` names the handler (app.jobs.timers.HANDLERS); `key` is unique, so scheduling the same step twice is one
    row (e.g. "ndr:12:rto"). `state`: pending → done | cancelled | failed (after TIMER_MAX_ATTEMPTS failures, each
    retried later by a backoff; `last_error` says why)."""

    __tablename__ = "timers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(TIMER_KIND_MAX), nullable=False)
    key: Mapped[str] = mapped_column(String(TIMER_KEY_MAX), nullable=False, unique=True)
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"))
    ndr_id: Mapped[int | None] = mapped_column(ForeignKey("ndrs.id", ondelete="CASCADE"))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    state: Mapped[str] = mapped_column(String(TIMER_STATE_MAX), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    last_error: Mapped[str | None] = mapped_column(String(TIMER_ERROR_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by: Mapped[str | None] = mapped_column(String(64))  # "<host>:<pid>" of the process that ran it

    __table_args__ = (
        Index("ix_timers_pending_due", "due_at",
              postgresql_where=text("state = 'pending'"), sqlite_where=text("state = 'pending'")),
        Index("ix_timers_ndr", "ndr_id"),
    )

    def __repr__(self) -> str:
        return f"<Timer {self.key} {self.state} due={self.due_at}>"
