from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

# suppressed: not sent because the recipient turned the channel off (app.services.outbox.preferences).
STATES = ("pending", "sending", "sent", "dead", "suppressed")


class Notification(db.Model):
    """The transactional outbox: one row per message to deliver. It names the shipment and the event the message
    is about; the worker renders the message from them when it sends it (app.services.outbox.messages)."""

    __tablename__ = "notifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="RESTRICT"), nullable=False)
    event_id: Mapped[int] = mapped_column(ForeignKey("tracking_events.id", ondelete="RESTRICT"), nullable=False)
    channel: Mapped[str] = mapped_column(String(16), nullable=False, default="email")
    recipient: Mapped[str] = mapped_column(String(254), nullable=False)
    subject: Mapped[str] = mapped_column(String(255), nullable=False)
    state: Mapped[str] = mapped_column(String(16), nullable=False, default="pending")
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("event_id", "channel", "recipient", name="uq_notifications_event_channel_recipient"),
        Index("ix_notifications_state_next_attempt", "state", "next_attempt_at"),
        # What the worker looks for, kept small: rows leave these indexes as soon as they are claimed or sent
        # (an index on state alone fills with dead entries of the pending -> sending -> sent churn).
        Index("ix_notifications_pending_due", "next_attempt_at", "id",
              postgresql_where=text("state = 'pending'"), sqlite_where=text("state = 'pending'")),
        Index("ix_notifications_sending_lease", "lease_until",
              postgresql_where=text("state = 'sending'"), sqlite_where=text("state = 'sending'")),
        Index("ix_notifications_created_at", "created_at"),  # the staff outbox list, newest first
    )

    def __repr__(self) -> str:
        return f"<Notification {self.id} {self.state} attempts={self.attempts}>"
