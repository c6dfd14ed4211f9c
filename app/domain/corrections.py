"""Corrections to a booking: which fields staff may correct, and until when.

Rules:
- The receiver's contacts and address (RECEIVER_FIELDS, the destination's point among them) may change until
  the shipment goes Out for Delivery: the courier then carries them. From Out for Delivery on (Delivery
  Attempted, the return leg, every final status, and On Hold from any of these) they are fixed. The return leg
  counts even when it began before Out for Delivery: the parcel is going back to its sender, and the receiver's
  details no longer route it.
- The parcel's details and its payment (PARCEL_EDIT_FIELDS) may change until the shipment is final (Delivered,
  Returned to Sender, Cancelled): a parcel weighed again at the hub, or paid differently at the door, is
  corrected while it is still on its way.
- No status is left behind once reached: from Out for Delivery a shipment never goes back before it, so a field
  that is fixed stays fixed.
"""
from __future__ import annotations

from collections.abc import Iterable

from app.domain.pricing import PRICING_FIELDS
from app.domain.status import FINAL_STATUSES, RETURN_LEG, Status

RECEIVER_FIELDS: tuple[str, ...] = ("receiver_name", "mobile", "email", "destination", "destination_pincode",
                                    "destination_lat", "destination_lon")
PARCEL_EDIT_FIELDS: tuple[str, ...] = ("weight_kg", "length_cm", "width_cm", "height_cm", "pieces",
                                       "declared_value", "service", "payment", "cod_amount")
EDITABLE_FIELDS: tuple[str, ...] = RECEIVER_FIELDS + PARCEL_EDIT_FIELDS
# A change to any of these prices the booking again (the sender's PIN code is not correctable here).
REPRICING_FIELDS: frozenset[str] = frozenset(PRICING_FIELDS) & frozenset(EDITABLE_FIELDS)

# The statuses from which the receiver's contacts and address are fixed.
RECEIVER_FIXED_FROM: frozenset[str] = frozenset({Status.OUT_FOR_DELIVERY, Status.DELIVERY_ATTEMPTED}) \
    | RETURN_LEG | FINAL_STATUSES


def effective_status(status: str, held_from: str | None = None) -> str:
    """The status that decides the cut-offs: for a shipment On Hold, the status it was held from."""
    return held_from if status == Status.ON_HOLD and held_from else status


def receiver_fixed(status: str, held_from: str | None = None) -> bool:
    return effective_status(status, held_from) in RECEIVER_FIXED_FROM


def parcel_fixed(status: str) -> bool:
    return status in FINAL_STATUSES


def editable_fields(status: str, held_from: str | None = None) -> tuple[str, ...]:
    """The fields staff may still correct on a shipment in `status` (On Hold: held from `held_from`)."""
    fields: tuple[str, ...] = ()
    if not receiver_fixed(status, held_from):
        fields += RECEIVER_FIELDS
    if not parcel_fixed(status):
        fields += PARCEL_EDIT_FIELDS
    return fields


def fixed_among(names: Iterable[str], status: str, held_from: str | None = None) -> tuple[list[str], list[str]]:
    """Of `names`, (the receiver's fields that are fixed now, the parcel's fields that are fixed now)."""
    names = list(names)
    receiver = [n for n in names if n in RECEIVER_FIELDS] if receiver_fixed(status, held_from) else []
    parcel = [n for n in names if n in PARCEL_EDIT_FIELDS] if parcel_fixed(status) else []
    return receiver, parcel
