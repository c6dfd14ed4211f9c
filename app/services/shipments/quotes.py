"""What a booking would cost before it is made: the public price check behind the booking form.

Rules: the pricing fields are read by the booking's own parcel rules (app.domain.parcels: the same limits on
weight, sides and the amount to collect, COD_MAX included) and a PIN code given must be in India Post's
directory, as a booking's must; the destination's PIN code is required (without one a booking is priced as
national, which is no estimate). Whether the network serves the destination is not this answer's to give: that
is the serviceability pre-check's (app.services.shipments.serviceability). Nothing is written and nothing
personal is read.
"""
from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from flask import current_app
from flask_babel import gettext

from app.domain.parcels import check_parcel
from app.domain.pincodes import normalise_pincode
from app.domain.pricing import PRICING_FIELDS, Charges
from app.errors import ValidationError
from app.services.shipments.pincodes import is_valid_pincode
from app.services.shipments.rates import charges_for

_PINCODE_FIELDS = ("sender_pincode", "destination_pincode")


def quote_booking(fields: Mapping[str, object]) -> Charges:
    """The charges a booking with these pricing fields (PRICING_FIELDS; anything else is ignored) would get on
    the rate card in force. ValidationError naming each field that a booking would refuse."""
    raw = {name: fields.get(name) for name in PRICING_FIELDS}
    parcel, checked = check_parcel(raw, cod_max=Decimal(str(current_app.config["COD_MAX"])))
    problems = checked.said_in(gettext)
    if not isinstance(raw["destination_pincode"], str) or not raw["destination_pincode"].strip():
        problems.setdefault("destination_pincode", gettext("Give the destination's PIN code."))
    for name in _PINCODE_FIELDS:
        pin = normalise_pincode(raw[name])
        if name not in problems and pin is not None and not is_valid_pincode(pin):
            problems[name] = gettext("%(pincode)s is not a PIN code in India Post's directory.", pincode=pin)
    if problems:
        raise ValidationError(fields=problems)
    return charges_for(**{name: getattr(parcel, name) for name in PRICING_FIELDS})
