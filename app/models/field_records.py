from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

CLIENT_ID_MAX = 64
REFERENCE_MAX = 64
ERROR_MAX = 200


class CourierEventReceipt(db.Model):
    """An action the courier app sent (POST /courier/events), by the client's own id: a replay of the same id
    finds this row and applies nothing twice. `outcome` is what became of it (`applied` or `refused`)."""

    __tablename__ = "courier_event_receipts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    courier_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    client_id: Mapped[str] = mapped_column(String(CLIENT_ID_MAX), nullable=False)
    tracking_id: Mapped[str] = mapped_column(String(32), nullable=False)
    status: Mapped[str] = mapped_column(String(32), nullable=False)
    happened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    outcome: Mapped[str] = mapped_column(String(16), nullable=False)
    error: Mapped[str | None] = mapped_column(String(ERROR_MAX))
    event_id: Mapped[int | None] = mapped_column(ForeignKey("tracking_events.id", ondelete="RESTRICT"))

    __table_args__ = (UniqueConstraint("courier_id", "client_id", name="uq_courier_event_receipts_client"),)


class CodCollection(db.Model):
    """Cash on delivery a courier recorded with a Delivered event: what was due, what they collected, how."""

    __tablename__ = "cod_collections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="RESTRICT"), nullable=False)
    event_id: Mapped[int] = mapped_column(ForeignKey("tracking_events.id", ondelete="RESTRICT"), unique=True,
                                          nullable=False)
    courier_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), nullable=False)
    expected: Mapped[Decimal] = mapped_column(Numeric(9, 2), nullable=False)
    collected: Mapped[Decimal] = mapped_column(Numeric(9, 2), nullable=False)
    method: Mapped[str] = mapped_column(String(8), nullable=False)  # cash | upi
    upi_reference: Mapped[str | None] = mapped_column(String(REFERENCE_MAX))
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False)

    __table_args__ = (Index("ix_cod_collections_courier_at", "courier_id", "collected_at"),)


class CodRemittance(db.Model):
    """Cash a courier handed in at the hub, as received by staff."""

    __tablename__ = "cod_remittances"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    courier_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"), nullable=False)
    amount: Mapped[Decimal] = mapped_column(Numeric(10, 2), nullable=False)
    reference: Mapped[str] = mapped_column(String(REFERENCE_MAX), nullable=False)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    received_by: Mapped[str] = mapped_column(String(64), nullable=False)

    __table_args__ = (Index("ix_cod_remittances_courier_at", "courier_id", "received_at"),)


class FieldSetting(db.Model):
    """An admin's choice for the field (what proof a delivery needs, the delivery code): no row, the default
    (app.domain.field.SETTING_DEFAULTS)."""

    __tablename__ = "field_settings"

    key: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(16), nullable=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(64), nullable=False)


class DeliveryCode(db.Model):
    """The one-time delivery code sent to the recipient at Out for Delivery (when the setting is on), hashed;
    wrong codes counted, a stop locked for a while after too many."""

    __tablename__ = "delivery_codes"

    shipment_id: Mapped[int] = mapped_column(ForeignKey("shipments.id", ondelete="CASCADE"), primary_key=True)
    code_hash: Mapped[str] = mapped_column(String(255), nullable=False)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    failures: Mapped[int] = mapped_column(Integer, nullable=False, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
