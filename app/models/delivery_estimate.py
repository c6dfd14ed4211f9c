from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.extensions import db
from app.models.types import UTCDateTime

NETWORK_AREA = "*"


class DeliveryEstimate(db.Model):
    """What the courier's own history says about the time left until delivery, per destination area and current
    status: the 5th, 50th and 90th percentile in seconds, from `samples` past deliveries. Rebuilt periodically."""

    __tablename__ = "delivery_estimates"

    area: Mapped[str] = mapped_column(String(64), primary_key=True)  # "pin:682", "city:kochi" or "*"
    status: Mapped[str] = mapped_column(String(32), primary_key=True)
    samples: Mapped[int] = mapped_column(Integer, nullable=False)
    p05_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    p50_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    p90_seconds: Mapped[float] = mapped_column(Float, nullable=False)
    refreshed_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    def __repr__(self) -> str:
        return f"<DeliveryEstimate {self.area} {self.status} p50={self.p50_seconds / 3600:.1f}h n={self.samples}>"
