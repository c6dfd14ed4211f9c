from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime


class DetailCheck(db.Model):
    """Misses of the public "show full details" check (last 4 digits of the mobile), one row per shipment.

    Kept in the database so the limit holds across processes and containers: `misses` counts wrong answers
    since `window_started_at`; when they reach the limit the check is refused until `locked_until`.
    """

    __tablename__ = "detail_checks"

    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), primary_key=True)
    misses: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    window_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return f"<DetailCheck {self.shipment_id} misses={self.misses} locked_until={self.locked_until}>"
