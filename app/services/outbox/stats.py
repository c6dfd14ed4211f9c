"""What the outbox holds right now, for the metrics scrape: one grouped query over the rows not yet sent."""
from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import func, select

from app.domain.timeutil import as_utc, utcnow
from app.extensions import db
from app.models import Notification

# Sent rows are history (millions of them, counted by the worker's delivery counter instead); the states that
# are still waiting or need staff are few, and the (state, next_attempt_at) index finds them.
OPEN_STATES = ("pending", "sending", "dead")


@dataclass(frozen=True)
class OutboxSummary:
    rows: list[tuple[str, str, int]]  # (channel, state, count) for OPEN_STATES; states with none left out
    oldest_pending_age: dict[str, float] = field(default_factory=dict)  # seconds per channel, 0: none pending


def outbox_summary() -> OutboxSummary:
    """Rows per channel and open state, and per channel the age of the oldest pending row, in one query."""
    result = db.session.execute(
        select(Notification.channel, Notification.state, func.count(), func.min(Notification.created_at))
        .where(Notification.state.in_(OPEN_STATES))
        .group_by(Notification.channel, Notification.state)
    ).all()
    now = utcnow()
    ages = {channel: 0.0 for channel, _state, _count, _oldest in result} | {"email": 0.0}
    for channel, state, _count, oldest in result:
        if state == "pending" and oldest is not None:
            ages[channel] = max((now - as_utc(oldest)).total_seconds(), 0.0)
    return OutboxSummary([(channel, state, count) for channel, state, count, _oldest in result], ages)
