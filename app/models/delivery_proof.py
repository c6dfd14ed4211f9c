from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.shipment import NAME_MAX
from app.models.types import UTCDateTime

RECEIVED_BY_MAX = NAME_MAX
ATTEMPT_REASON_MAX = 32
STORAGE_KEY_MAX = 200


class DeliveryProof(db.Model):
    """What was recorded with a Delivered or Delivery Attempted event: who received the parcel, or why it could
    not be delivered, and the keys of the signature and photo in the file store (app.services.shipments.storage).

    One row per event, written in the event's own transaction and never changed afterwards (like the event).
    `received_by` is NULL when the client did not give it (the paper-compatible `POST /update/<id>`).
    """

    __tablename__ = "delivery_proofs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[int] = mapped_column(ForeignKey("tracking_events.id", ondelete="RESTRICT"), unique=True,
                                          nullable=False)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="RESTRICT"), nullable=False)
    received_by: Mapped[str | None] = mapped_column(String(RECEIVED_BY_MAX))
    attempt_reason: Mapped[str | None] = mapped_column(String(ATTEMPT_REASON_MAX))
    signature_key: Mapped[str | None] = mapped_column(String(STORAGE_KEY_MAX))
    photo_key: Mapped[str | None] = mapped_column(String(STORAGE_KEY_MAX))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (
        # A shipment's proofs, for its staff page.
        Index("ix_delivery_proofs_shipment_id", "shipment_id"),
    )

    def __repr__(self) -> str:
        return f"<DeliveryProof event={self.event_id} shipment={self.shipment_id}>"
