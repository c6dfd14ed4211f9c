"""Operational alerts: raised once per cause, acknowledged by staff, emailed in digests."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

ALERT_KIND_MAX = 32
ALERT_CAUSE_MAX = 96
ALERT_NOTE_MAX = 500


class Alert(db.Model):
    """Something staff must look at (app.services.operations.alerts). `kind` is one of ALERT_KINDS; `cause` says
    which occurrence ("shipment:12", "courier:7:2026-12-07T09:15:00Z", "ndr:31"): (kind, cause) is unique, so an
    alert is raised once per cause however many processes look. `details` holds what the page shows (no email,
    full mobile or street address). `emailed_at`: sent to ADMIN_ALERT_EMAILS in a digest."""

    __tablename__ = "alerts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(ALERT_KIND_MAX), nullable=False)
    cause: Mapped[str] = mapped_column(String(ALERT_CAUSE_MAX), nullable=False)
    shipment_id: Mapped[int | None] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"))
    courier_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    details: Mapped[dict] = mapped_column(JSON, nullable=False, default=dict)
    acknowledged_by: Mapped[str | None] = mapped_column(String(64))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    note: Mapped[str | None] = mapped_column(String(ALERT_NOTE_MAX))
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("kind", "cause", name="uq_alerts_kind_cause"),
        Index("ix_alerts_raised_at", "raised_at"),
        Index("ix_alerts_emailed_at", "emailed_at"),
    )

    def __repr__(self) -> str:
        return f"<Alert {self.id} {self.kind} {self.cause}>"
