"""Promised delivery: how many days a booking is promised in, by service level and zone pair."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime


class PromiseRule(db.Model):
    """Days from booking to the end of the promised day (DISPLAY_TIMEZONE), for a service (`standard`,
    `express`) and a zone pair (`local`, `state`, `national`: app.domain.pricing.zone_between). A pair with no row
    takes the default (app.domain.promises.DEFAULT_PROMISE_DAYS). Admins edit them."""

    __tablename__ = "promise_rules"

    service: Mapped[str] = mapped_column(String(16), primary_key=True)
    zone: Mapped[str] = mapped_column(String(16), primary_key=True)
    days: Mapped[int] = mapped_column(Integer, nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), nullable=False)
