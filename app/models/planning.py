"""Planning: delivery zones, dispatch runs, supervisors' overrides of planned stops, and the geocoder's cache."""
from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON, Date, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

ZONE_NAME_MAX = 80
RUN_STATE_MAX = 8
REASON_MAX = 200


class Zone(db.Model):
    """A delivery zone: a GeoJSON Polygon or MultiPolygon (checked by app.services.planning.zones) and the hub its
    couriers start from. A point on a border between zones belongs to the one with the lowest id."""

    __tablename__ = "zones"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(ZONE_NAME_MAX), nullable=False, unique=True)
    geometry: Mapped[dict] = mapped_column(JSON, nullable=False)
    hub_lat: Mapped[float | None] = mapped_column(Float)
    hub_lon: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), nullable=False)

    def __repr__(self) -> str:
        return f"<Zone {self.id} {self.name}>"


class DispatchRun(db.Model):
    """One dispatch: asked for by staff (`requested_by`) or by the schedule (`scheduled_for`, unique per zone, so
    a slot is planned once however many processes look), solved by the job runner under a lease (rule 13).

    `state`: queued → running → done | failed. `result` holds the manifests, the unassigned parcels and the
    savings baseline, as `GET /admin/dispatch/<id>` shows them."""

    __tablename__ = "dispatch_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(RUN_STATE_MAX), nullable=False, default="queued")
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id", ondelete="SET NULL"))
    plan_date: Mapped[date] = mapped_column(Date, nullable=False)
    couriers: Mapped[list | None] = mapped_column(JSON)  # usernames asked for; None: every courier on shift
    requested_by: Mapped[str] = mapped_column(String(64), nullable=False)
    scheduled_for: Mapped[datetime | None] = mapped_column(UTCDateTime)
    solver: Mapped[str | None] = mapped_column(String(32))
    seconds: Mapped[float | None] = mapped_column(Float)
    result: Mapped[dict | None] = mapped_column(JSON)
    error: Mapped[str | None] = mapped_column(String(500))
    attempts: Mapped[int] = mapped_column(Integer, nullable=False, default=0, server_default="0")
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("zone_id", "scheduled_for", name="uq_dispatch_runs_zone_slot"),
        Index("ix_dispatch_runs_state_created", "state", "created_at"),
    )

    def __repr__(self) -> str:
        return f"<DispatchRun {self.id} {self.state}>"


class RunSheetOverride(db.Model):
    """A supervisor moved a planned stop (to another run sheet or position), with the reason: kept for the weekly
    review of overrides, beside its audit row."""

    __tablename__ = "runsheet_overrides"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="RESTRICT"), nullable=False)
    from_runsheet_id: Mapped[int | None] = mapped_column(ForeignKey("runsheets.id", ondelete="SET NULL"))
    from_sequence: Mapped[int | None] = mapped_column(Integer)
    to_runsheet_id: Mapped[int | None] = mapped_column(ForeignKey("runsheets.id", ondelete="SET NULL"))
    to_sequence: Mapped[int] = mapped_column(Integer, nullable=False)
    reason: Mapped[str] = mapped_column(String(REASON_MAX), nullable=False)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)

    __table_args__ = (Index("ix_runsheet_overrides_at", "at"),)


class GeocodeCacheEntry(db.Model):
    """A geocoder's answer for an address, keyed by a hash of the normalised address and PIN code (the address
    itself is not kept here); lat/lon None: the geocoder found nothing."""

    __tablename__ = "geocode_cache"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    provider: Mapped[str] = mapped_column(String(16), nullable=False)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
