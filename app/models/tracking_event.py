from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

if TYPE_CHECKING:
    from app.models.shipment import Shipment

LOCATION_MAX = 120
NOTE_MAX = 500
ACTOR_MAX = 64


class TrackingEvent(db.Model):
    """One step in a shipment's life. Append-only: never updated, never deleted."""

    __tablename__ = "tracking_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="RESTRICT"), nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    location: Mapped[str] = mapped_column(String(LOCATION_MAX), nullable=False)
    # Staff only, everywhere (pages, JSON, email). What the customer is told goes in customer_message.
    note: Mapped[str | None] = mapped_column(String(NOTE_MAX))
    customer_message: Mapped[str | None] = mapped_column(String(NOTE_MAX))
    actor: Mapped[str] = mapped_column(String(ACTOR_MAX), nullable=False)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    shipment: Mapped[Shipment] = relationship(lazy="raise_on_sql")

    __table_args__ = (
        # Timelines (one shipment's events in time order). No index on location: no query looks events up by it.
        Index("ix_tracking_events_shipment_occurred", "shipment_id", "occurred_at"),
        # A courier's day (their cash ledger, their end-of-day report): the events they recorded, by time.
        Index("ix_tracking_events_actor_occurred", "actor", "occurred_at"),
    )

    def __repr__(self) -> str:
        return f"<TrackingEvent {self.shipment_id} {self.status} @ {self.location}>"
