from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

STOP_STATE_MAX = 8


class RunSheet(db.Model):
    """One courier's stops for one day (DISPLAY_TIMEZONE), created or extended by staff (or by dispatch),
    handed out once (`dispatched_at`: its parcels went Out for Delivery with the courier as the actor)."""

    __tablename__ = "runsheets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    courier_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), nullable=False)
    date: Mapped[date] = mapped_column(Date, nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(64), nullable=False)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_by: Mapped[str | None] = mapped_column(String(64))
    # The dispatch run that planned it (None: made by hand).
    dispatch_run_id: Mapped[int | None] = mapped_column(ForeignKey("dispatch_runs.id", ondelete="SET NULL",
                                                                        name="fk_runsheets_dispatch_run_id"))

    __table_args__ = (UniqueConstraint("courier_id", "date", name="uq_runsheets_courier_date"),)

    def __repr__(self) -> str:
        return f"<RunSheet {self.id} courier={self.courier_id} {self.date}>"


class RunSheetStop(db.Model):
    """A parcel on a run sheet, at its place in the order.

    `state`: `open` (to be done), `done` (the parcel's status moved on: `outcome` is the status it reached,
    closed by the status-change core), `moved` (assigned to another run sheet). A parcel has at most one open
    stop anywhere: a partial unique index says so in the database.
    """

    __tablename__ = "runsheet_stops"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    runsheet_id: Mapped[int] = mapped_column(ForeignKey("runsheets.id", ondelete="CASCADE"), nullable=False)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="RESTRICT"), nullable=False)
    sequence: Mapped[int] = mapped_column(Integer, nullable=False)
    state: Mapped[str] = mapped_column(String(STOP_STATE_MAX), nullable=False, default="open")
    outcome: Mapped[str | None] = mapped_column(String(32))
    eta: Mapped[datetime | None] = mapped_column(UTCDateTime)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        Index("ix_runsheet_stops_runsheet_sequence", "runsheet_id", "sequence"),
        Index("uq_runsheet_stops_open_shipment", "shipment_id", unique=True,
              postgresql_where=text("state = 'open'"), sqlite_where=text("state = 'open'")),
        Index("ix_runsheet_stops_shipment", "shipment_id"),
    )

    def __repr__(self) -> str:
        return f"<RunSheetStop {self.runsheet_id}#{self.sequence} shipment={self.shipment_id} {self.state}>"
