"""Corrections to a booking by staff: the receiver's contacts and address, the parcel and its payment.

Rules (the cut-offs themselves are app.domain.corrections):
- `changes` holds only the fields to change, as sent (form text, JSON values); None or "" clears an optional
  field. An unknown field is a ValidationError (400). The changes are merged into the shipment's current values
  and checked by the rules of a booking: the parcel rules (app.domain.parcels.check_parcel, with COD_MAX), the
  receiver's name and destination required, the mobile required and normalised (DEFAULT_PHONE_REGION), the email
  optional (the mobile is enough) and normalised. Every problem is named in one ValidationError and nothing is
  written. Payment changed to prepaid without an amount to collect sent clears the amount.
- A field whose checked value is the stored one is no change (a mobile typed another way, 2.50 kg for 2.5 kg).
  Nothing changed: the shipment is returned as it is; nothing is written, nothing audited.
- A change to a field that is fixed by now is CorrectionRefused (409), naming the fields and why.
- A new destination PIN code must be in India Post's directory (400). A new PIN code, payment or service must be
  served as asked (serviceability.check_booking, 422); while the served list is not empty a PIN code cannot be
  cleared. Unlike a booking, the destination's text is never read for a PIN code: here the PIN is its own field.
- A change to a pricing field (the PIN code, weight, sides, service, payment, amount to collect) prices the
  booking again on the rate card in force, its charges and the card's version stored with it.
- The promised date (`promised_by`) is kept whatever changes: a courier keeps the promise it made, and the SLA is
  measured against it (app.services.operations.promises).
- The destination's point (`destination_lat` and `destination_lon`, both or neither, in range) given by staff is
  `exact`; both cleared, the parcel is placed again from its address. A new PIN code, or a new address for a
  point that was not `exact`, places it again too (app.services.planning.points): point, precision and zone.
- Written with a compare-and-set on (status, updated_at), as status changes are written: a status change that
  lands between the read and the write makes the correction read again and check the cut-offs against the new
  status. updated_at moves to now, so the changes feed and the dashboard show the correction (and a status change
  that read the row before it is checked again by its own compare-and-set).
- One `shipment_edited` audit row: per changed field {"from", "to"}. No contact is in it: the mobile is masked
  to its last four digits and an email is "[redacted]", under the keys receiver_mobile and receiver_email (the
  audit refuses keys named for contacts). Money is written with thousands separators ("12,500.00"): the audit
  redacts a plain run of eight or more digits as a phone number. A new price adds `charges_total`.
- The public tracking document is told (the receiver's first name, the destination's city, the pieces and the
  last update are public). The recipient's next message goes to the contacts stored by then: messages are
  addressed when they are queued; those already queued keep their address.
"""
from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from flask import current_app
from flask_babel import gettext
from sqlalchemy import update

from app.domain.corrections import EDITABLE_FIELDS, PARCEL_EDIT_FIELDS, REPRICING_FIELDS, fixed_among
from app.domain.parcels import check_parcel, parcel_of
from app.domain.points import check_point
from app.domain.pricing import PRICING_FIELDS
from app.domain.status import Status
from app.domain.timeutil import utcnow
from app.errors import Conflict, Unprocessable, ValidationError
from app.extensions import db
from app.models import Shipment
from app.models.shipment import DESTINATION_MAX, EMAIL_MAX, NAME_MAX
from app.services.planning.points import placement_after_correction
from app.services.shipments import rates, serviceability, tracking_cache
from app.services.shipments.contacts import ContactError, mask_mobile, normalise_email, normalise_mobile
from app.services.shipments.pincodes import is_valid_pincode
from app.services.shipments.queries import find_shipment, held_from
from app.services.staff.audit import REDACTED, record_audit

# Rounds of the compare-and-set: a correction that lost a race with a status change reads again and retries.
EDIT_ATTEMPTS = 8
# The audit refuses detail keys named for contacts; these are the receiver's, and their values are masked.
AUDIT_KEYS = {"mobile": "receiver_mobile", "email": "receiver_email"}
MONEY_FIELDS = frozenset({"declared_value", "cod_amount"})
POINT_FIELDS = ("destination_lat", "destination_lon")
_SHIPMENTS = Shipment.__table__
_FIELD_NAME_MAX = 40


class CorrectionRefused(Conflict):
    """A correction to fields that are fixed by now (app.domain.corrections): 409, naming them and why."""

    def __init__(self, message: str, *, status: str, fixed: list[str]) -> None:
        super().__init__(message, current_status=status, fixed=fixed)
        self.fixed = fixed


def edit_shipment(tracking_id: str, changes: Mapping[str, object],
                  actor: str) -> tuple[Shipment, dict[str, tuple[object, object]]]:
    """Correct a booking's receiver, parcel or payment: the shipment as it now is, and each changed field's
    (old, new) value (empty when nothing changed). In the caller's transaction; see the module's rules."""
    unknown = [name for name in changes if name not in EDITABLE_FIELDS]
    if unknown:
        raise ValidationError(fields={str(name)[:_FIELD_NAME_MAX]: "Unknown field." for name in unknown})
    shipment = find_shipment(tracking_id)
    for attempt in range(EDIT_ATTEMPTS):
        if attempt:
            db.session.refresh(shipment)
        proposed = _checked_values(shipment, changes)
        placement = placement_after_correction(shipment, proposed, utcnow())
        sent_point = tuple(proposed.pop(name) for name in POINT_FIELDS if name in proposed)
        if sent_point and sent_point != (shipment.destination_lat, shipment.destination_lon):
            # A new point, or both cleared: as placed. The stored point sent back (the page's form) is no change.
            proposed.update(destination_lat=placement.lat, destination_lon=placement.lon)
        changed = {name: (getattr(shipment, name), value) for name, value in proposed.items()
                   if value != getattr(shipment, name)}
        if not changed:
            return shipment, {}
        _refuse_fixed(shipment, changed)
        _check_network(shipment, proposed, changed)
        values = {name: new for name, (_old, new) in changed.items()}
        # Placed again without staff giving the point: the audit says where it went (a point given is in `changed`).
        moved = (placement is not None and not set(POINT_FIELDS) & changed.keys()
                 and _point_of(shipment) != (placement.lat, placement.lon, placement.precision))
        if placement is not None:
            values.update(placement.values())
        old_charges, old_point = shipment.charges, _point_of(shipment)
        if REPRICING_FIELDS & changed.keys():
            charges = rates.charges_for(**{name: proposed.get(name, getattr(shipment, name))
                                           for name in PRICING_FIELDS})
            values.update(charges=charges.as_dict(), rate_card_version=charges.rate_card_version)
        if _compare_and_set(shipment, values):
            break
    else:
        raise Conflict(gettext("The shipment is being updated by someone else; please try again."))
    db.session.refresh(shipment)
    record_audit("shipment_edited", actor=actor, target_type="shipment", target_id=shipment.tracking_id,
                 details=_audit_details(changed, old_charges, values.get("charges"),
                                        point=(old_point, _point_of(shipment)) if moved else None))
    tracking_cache.publish_changes([shipment.tracking_id])
    return shipment, changed


def _checked_values(shipment: Shipment, changes: Mapping[str, object]) -> dict[str, object]:
    """The clean value of each field in `changes` (and of the amount to collect, when a change to prepaid
    clears it), checked against the rest of the booking as it stands; ValidationError naming every problem."""
    problems: dict[str, str] = {}
    proposed: dict[str, object] = {}
    for name, missing, max_chars in (("receiver_name", gettext("Enter the receiver's name."), NAME_MAX),
                                     ("destination", gettext("Enter the destination."), DESTINATION_MAX)):
        if name in changes:
            value = changes[name]
            if value is not None and not isinstance(value, str):
                problems[name] = "Must be text."
            elif not (value or "").strip():
                problems[name] = missing
            elif len(value.strip()) > max_chars:
                problems[name] = gettext("At most %(max)d characters.", max=max_chars)
            else:
                proposed[name] = value.strip()
    if "mobile" in changes:
        value = changes["mobile"]
        try:
            if value is not None and not isinstance(value, str):
                raise ContactError("Must be text.")
            proposed["mobile"] = normalise_mobile(value or "", current_app.config["DEFAULT_PHONE_REGION"])
        except ContactError as error:
            problems["mobile"] = str(error)
    if "email" in changes:
        value = changes["email"]
        try:
            if value is not None and not isinstance(value, str):
                raise ContactError("Must be text.")
            text = (value or "").strip()
            if len(text) > EMAIL_MAX:
                raise ContactError(gettext("At most %(max)d characters.", max=EMAIL_MAX))
            proposed["email"] = normalise_email(text) if text else None
        except ContactError as error:
            problems["email"] = str(error)

    if any(name in changes for name in POINT_FIELDS):
        point, point_problems = check_point(changes.get(POINT_FIELDS[0]), changes.get(POINT_FIELDS[1]))
        problems.update(point_problems.said_in(gettext))
        if not point_problems:  # None for both: cleared, found again from the address
            proposed.update(destination_lat=point.lat if point else None, destination_lon=point.lon if point else None)

    parcel_names = [name for name in changes if name in PARCEL_EDIT_FIELDS or name == "destination_pincode"]
    if parcel_names:
        raw = {**parcel_of(shipment).as_dict(), **{name: changes[name] for name in parcel_names}}
        payment = changes.get("payment")
        if isinstance(payment, str) and payment.strip().lower() == "prepaid" and "cod_amount" not in changes:
            raw["cod_amount"] = None
            parcel_names.append("cod_amount")
        # No destination text: a correction never reads a PIN code out of the address (see the module's rules).
        parcel, parcel_problems = check_parcel(raw, cod_max=Decimal(str(current_app.config["COD_MAX"])))
        problems.update(parcel_problems.said_in(gettext))
        if not parcel_problems:
            proposed.update({name: getattr(parcel, name) for name in parcel_names})
    if problems:
        raise ValidationError(fields=problems)
    return proposed


def _refuse_fixed(shipment: Shipment, changed: Mapping[str, object]) -> None:
    held = held_from(shipment)
    receiver, parcel = fixed_among(changed, shipment.status, held)
    if not receiver and not parcel:
        return
    status = (gettext("%(status)s (held from %(held_from)s)", status=shipment.status, held_from=held)
              if shipment.status == Status.ON_HOLD and held else shipment.status)
    reasons = []
    if receiver:
        reasons.append(gettext(
            "The receiver's contacts and address are fixed once a shipment is Out for Delivery, and this one is "
            "%(status)s: %(fields)s cannot change.", status=status, fields=", ".join(receiver)))
    if parcel:
        reasons.append(gettext(
            "The parcel's details are fixed once a shipment is Delivered, Returned to Sender or Cancelled, and this "
            "one is %(status)s: %(fields)s cannot change.", status=status, fields=", ".join(parcel)))
    raise CorrectionRefused(" ".join(reasons), status=shipment.status, fixed=receiver + parcel)


def _check_network(shipment: Shipment, proposed: Mapping[str, object], changed: Mapping[str, object]) -> None:
    """A booking's network checks (app.services.shipments.booking.checked_booking), for what changed."""
    pincode = proposed.get("destination_pincode", shipment.destination_pincode)
    if "destination_pincode" in changed and pincode is not None and not is_valid_pincode(pincode):
        message = gettext("%(pincode)s is not a PIN code in India Post's directory.", pincode=pincode)
        raise ValidationError(message, fields={"destination_pincode": message})
    if not {"destination_pincode", "payment", "service"} & changed.keys():
        return
    if pincode is not None:
        serviceability.check_booking(pincode, proposed.get("payment", shipment.payment),
                                     proposed.get("service", shipment.service))
    elif not serviceability.list_is_empty():
        message = gettext("Give the destination's PIN code: we deliver to the PIN codes we serve only.")
        raise Unprocessable(message, fields={"destination_pincode": message})


def _compare_and_set(shipment: Shipment, values: dict[str, object]) -> bool:
    """Write `values` (and updated_at) if the shipment still has the status and updated_at it was checked
    against; whether it did (the row then stays locked until the transaction ends)."""
    result = db.session.execute(
        update(_SHIPMENTS)
        .where(_SHIPMENTS.c.id == shipment.id, _SHIPMENTS.c.status == shipment.status,
               _SHIPMENTS.c.updated_at == shipment.updated_at)
        .values(**values, updated_at=utcnow()))
    return result.rowcount == 1


def _point_of(shipment: Shipment) -> tuple[float | None, float | None, str | None]:
    return shipment.destination_lat, shipment.destination_lon, shipment.destination_precision


def _audit_details(changed: Mapping[str, tuple[object, object]], old_charges: dict | None,
                   new_charges: dict | None, point: tuple[tuple, tuple] | None = None) -> dict:
    details = {AUDIT_KEYS.get(name, name): {"from": _audit_value(name, old), "to": _audit_value(name, new)}
               for name, (old, new) in changed.items()}
    if point is not None:  # placed again: where it is now, and how precise (the zone follows from it)
        details["destination_point"] = {"from": _point_text(*point[0]), "to": _point_text(*point[1])}
    if new_charges is not None:
        details["charges_total"] = {"from": _money(old_charges["total"]) if old_charges else None,
                                    "to": _money(new_charges["total"])}
    return details


def _audit_value(name: str, value: object) -> object:
    if value is None:
        return None
    if name == "mobile":
        return mask_mobile(str(value))
    if name == "email":
        return REDACTED
    if name in MONEY_FIELDS:
        return _money(value)
    if name in POINT_FIELDS:
        return f"{value:.6f}"  # a metre or so; more digits would read as a phone number to the audit
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    return value


def _point_text(lat: float | None, lon: float | None, precision: str | None) -> str | None:
    return None if lat is None or lon is None else f"{lat:.6f}, {lon:.6f} ({precision})"


def _money(value: object) -> str:
    return format(Decimal(str(value)), ",.2f")
