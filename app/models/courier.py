from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import BigInteger, Float, ForeignKey, Index, Integer, String, Time
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

VEHICLE_MAX = 16
NAME_MAX = 100


class CourierProfile(db.Model):
    """A courier's vehicle, capacity and shift (a staff user with the role `courier`), and where they were last
    seen: the last kept position (app.services.field.locations), and since when they have not moved more than
    the idle distance from `anchor` (for the idle state).

    One row per courier user, made with the account. The shift is local time (DISPLAY_TIMEZONE).
    """

    __tablename__ = "courier_profiles"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    # The name a recipient sees on the tracking page (its first word only); the username when not given.
    name: Mapped[str | None] = mapped_column(String(NAME_MAX))
    vehicle: Mapped[str] = mapped_column(String(VEHICLE_MAX), nullable=False)
    capacity: Mapped[int] = mapped_column(Integer, nullable=False)
    shift_start: Mapped[time] = mapped_column(Time, nullable=False)
    shift_end: Mapped[time] = mapped_column(Time, nullable=False)
    last_lat: Mapped[float | None] = mapped_column(Float)
    last_lon: Mapped[float | None] = mapped_column(Float)
    last_accuracy: Mapped[float | None] = mapped_column(Float)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the time of the last kept position
    anchor_lat: Mapped[float | None] = mapped_column(Float)
    anchor_lon: Mapped[float | None] = mapped_column(Float)
    moved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when the courier left the last anchor
    # Where dispatch starts and ends this courier's route (None: the zone's hub).
    start_lat: Mapped[float | None] = mapped_column(Float)
    start_lon: Mapped[float | None] = mapped_column(Float)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    def __repr__(self) -> str:
        return f"<CourierProfile user={self.user_id} {self.vehicle} x{self.capacity}>"


class CourierPosition(db.Model):
    """One kept GPS position of a courier, as the phone measured it. Append-only; purged after
    LOCATION_RETENTION_DAYS by the job runner."""

    __tablename__ = "courier_positions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    courier_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)
    lat: Mapped[float] = mapped_column(Float, nullable=False)
    lon: Mapped[float] = mapped_column(Float, nullable=False)
    accuracy: Mapped[float] = mapped_column(Float, nullable=False)
    speed: Mapped[float | None] = mapped_column(Float)
    heading: Mapped[float | None] = mapped_column(Float)
    battery: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_courier_positions_courier_at", "courier_id", "at"),
        Index("ix_courier_positions_at", "at"),  # the purge
    )

    def __repr__(self) -> str:
        return f"<CourierPosition {self.courier_id} {self.at:%H:%M:%S}>"
