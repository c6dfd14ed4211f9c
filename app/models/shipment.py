from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import JSON, Boolean, Float, ForeignKey, Index, Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from app.domain.parcels import ADDRESS_MAX, CONTENTS_MAX
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models.types import UTCDateTime

NAME_MAX = 100
MOBILE_MAX = 16  # E.164: "+" and at most 15 digits
EMAIL_MAX = 254
DESTINATION_MAX = 200
STATUS_MAX = 32
LANGUAGE_MAX = 8
PINCODE_LENGTH = 6
CHOICE_MAX = 16
PRECISION_MAX = 16


class Shipment(db.Model):
    __tablename__ = "shipments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tracking_id: Mapped[str] = mapped_column(String(8), unique=True, nullable=False)
    sender_name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    receiver_name: Mapped[str] = mapped_column(String(NAME_MAX), nullable=False)
    mobile: Mapped[str] = mapped_column(String(MOBILE_MAX), nullable=False)
    # The recipient's email: optional, a mobile is enough (that recipient gets SMS only).
    email: Mapped[str | None] = mapped_column(String(EMAIL_MAX), nullable=True)
    # The sender's contacts, when given (NULL: not given): the sender hears of the return leg at them (RTO
    # Initiated, Returned to Sender; app.services.outbox.queueing.sender_notice_insert_from). E.164 like `mobile`.
    sender_mobile: Mapped[str | None] = mapped_column(String(MOBILE_MAX))
    sender_email: Mapped[str | None] = mapped_column(String(EMAIL_MAX))
    destination: Mapped[str] = mapped_column(String(DESTINATION_MAX), nullable=False)
    status: Mapped[str] = mapped_column(String(STATUS_MAX), nullable=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, nullable=False, default=utcnow)
    # The language the shipment was booked in ("en", "hi"): its emails are written in it.
    language: Mapped[str] = mapped_column(String(LANGUAGE_MAX), nullable=False, default="en", server_default="en")
    # The parcel and its payment (app.domain.parcels checks them; staff and API answers carry them, public ones
    # only `pieces`). Money in INR to the paisa, weight in kg to the gram, sides in cm to the millimetre.
    sender_address: Mapped[str | None] = mapped_column(String(ADDRESS_MAX))
    sender_pincode: Mapped[str | None] = mapped_column(String(PINCODE_LENGTH))
    pickup: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False, server_default="0")
    destination_pincode: Mapped[str | None] = mapped_column(String(PINCODE_LENGTH))
    weight_kg: Mapped[Decimal | None] = mapped_column(Numeric(7, 3))
    length_cm: Mapped[Decimal | None] = mapped_column(Numeric(4, 1))
    width_cm: Mapped[Decimal | None] = mapped_column(Numeric(4, 1))
    height_cm: Mapped[Decimal | None] = mapped_column(Numeric(4, 1))
    pieces: Mapped[int] = mapped_column(Integer, nullable=False, default=1, server_default="1")
    declared_value: Mapped[Decimal | None] = mapped_column(Numeric(10, 2))
    contents: Mapped[str | None] = mapped_column(String(CONTENTS_MAX))
    service: Mapped[str] = mapped_column(String(CHOICE_MAX), nullable=False, default="standard",
                                         server_default="standard")
    payment: Mapped[str] = mapped_column(String(CHOICE_MAX), nullable=False, default="prepaid",
                                         server_default="prepaid")
    cod_amount: Mapped[Decimal | None] = mapped_column(Numeric(9, 2))
    # What the booking was priced at, and with which rate card (app.services.shipments.rates): kept as priced.
    charges: Mapped[dict | None] = mapped_column(JSON)
    rate_card_version: Mapped[int | None] = mapped_column(Integer)
    # Where the parcel goes on the map (app.services.planning.points): given by the booker ("exact"), the PIN
    # code's centroid ("pincode"), a geocoder's answer ("geocoded") or where it was last delivered ("delivered");
    # the zone holding that point (app.services.planning.zones); the recipient's delivery window, when asked for.
    destination_lat: Mapped[float | None] = mapped_column(Float)
    destination_lon: Mapped[float | None] = mapped_column(Float)
    destination_precision: Mapped[str | None] = mapped_column(String(PRECISION_MAX))
    zone_id: Mapped[int | None] = mapped_column(ForeignKey("zones.id", ondelete="SET NULL",
                                                           name="fk_shipments_zone_id"))
    window_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    window_to: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The end of the day delivery is promised by (DISPLAY_TIMEZONE), from the service and the zone pair
    # (app.services.operations.promises) or given by an integrator; the SLA is measured against it.
    promised_by: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        # Serves "newest first" for one number straight from the index, however many shipments it has.
        Index("ix_shipments_mobile_created_id", "mobile", "created_at", "id"),
        Index("ix_shipments_status_updated_at", "status", "updated_at"),
        Index("ix_shipments_updated_at", "updated_at"),
        # A zone's parcels by status: its open count, and the parcels dispatch may plan.
        Index("ix_shipments_zone_status", "zone_id", "status"),
        # Open parcels by promise: the SLA lists and the report's on-time rate.
        Index("ix_shipments_promised_by", "promised_by"),
    )

    def __repr__(self) -> str:
        return f"<Shipment {self.tracking_id} {self.status}>"
