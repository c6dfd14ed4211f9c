"""Rate cards: every saved version of the prices, kept for good. The newest version is the one in force."""
from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

CURRENCY_MAX = 3
CREATED_BY_MAX = 64


class RateCardVersion(db.Model):
    """One version of the rate card. Never edited (on PostgreSQL a trigger refuses UPDATE): a change is a new
    version, so the version a booking was priced with keeps meaning the prices it was priced at."""

    __tablename__ = "rate_cards"

    version: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    currency: Mapped[str] = mapped_column(String(CURRENCY_MAX), nullable=False)
    tax_rate: Mapped[Decimal] = mapped_column(Numeric(5, 4), nullable=False)
    volumetric_divisor: Mapped[int] = mapped_column(Integer, nullable=False)
    cod_min: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)
    cod_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2), nullable=False)
    # {zone: {service: {"first_kg", "first_price", "per_half_kg"}}}, amounts as decimal strings.
    slabs: Mapped[dict] = mapped_column(JSON, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(CREATED_BY_MAX), nullable=False)

    def __repr__(self) -> str:
        return f"<RateCardVersion {self.version}>"
