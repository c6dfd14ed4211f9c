from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime


class DetailCheck(db.Model):
    """Misses of the public "show full details" check (last 4 digits of the mobile), per shipment and client.

    Kept in the database so the limits hold across processes and containers: `misses` counts wrong answers
    since `window_started_at`; when they reach the limit the check is refused until `locked_until`. A client's
    row has a digest of its address as `client_key`; the row with ALL_CLIENTS counts every client's misses for
    the shipment's ceiling.
    """

    __tablename__ = "detail_checks"

    ALL_CLIENTS = "*"

    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), primary_key=True)
    client_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    misses: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    window_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)

    def __repr__(self) -> str:
        return (f"<DetailCheck {self.shipment_id}/{self.client_key} misses={self.misses} "
                f"locked_until={self.locked_until}>")
