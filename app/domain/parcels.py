"""What a booking says about its parcel and its payment: the rules every way of booking shares (the public form,
`POST /create` JSON, `/api/v1/shipments`, the CSV import) and a correction re-checks.

`check_parcel(raw, cod_max)` takes the raw values as they came (form and CSV text, JSON numbers, booleans or text)
and gives back clean values, or the problem with each field. Contacts (the sender's mobile and email) and PIN codes
against the directory are checked by the caller: those need libraries and data, and this module is the standard
library only.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from app.domain.pincodes import normalise_pincode, pincode_from_destination

WEIGHT_MIN, WEIGHT_MAX = Decimal("0.01"), Decimal("100")
SIDE_MIN, SIDE_MAX = Decimal("1"), Decimal("300")
PIECES_MIN, PIECES_MAX = 1, 50
COD_MAX_DEFAULT = Decimal("50000")  # COD_MAX, unless the deployment sets it
DECLARED_VALUE_MAX = Decimal("10000000")  # ₹1 crore: beyond it a parcel is not a courier's business
CONTENTS_MAX = 200
ADDRESS_MAX = 200
SERVICES = ("standard", "express")
PAYMENTS = ("prepaid", "cod")
PAISA = Decimal("0.01")
GRAM = Decimal("0.001")
MILLIMETRE = Decimal("0.1")

_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off", ""}

PARCEL_FIELDS = ("sender_address", "sender_pincode", "pickup", "destination_pincode", "weight_kg", "length_cm",
                 "width_cm", "height_cm", "pieces", "declared_value", "contents", "service", "payment",
                 "cod_amount")


@dataclass(frozen=True)
class Parcel:
    """A booking's parcel and payment details, checked. Money in INR, Decimal to the paisa."""
    sender_address: str | None = None
    sender_pincode: str | None = None
    pickup: bool = False
    destination_pincode: str | None = None
    weight_kg: Decimal | None = None
    length_cm: Decimal | None = None
    width_cm: Decimal | None = None
    height_cm: Decimal | None = None
    pieces: int = 1
    declared_value: Decimal | None = None
    contents: str | None = None
    service: str = "standard"
    payment: str = "prepaid"
    cod_amount: Decimal | None = None
    # Not stored: the destination PIN code was only read from the destination text, not given by the booker.
    destination_pincode_derived: bool = False

    def as_dict(self) -> dict:
        """JSON-ready: money and measures as decimal strings ("1250.00"), never floats."""
        return {name: (str(value) if isinstance(value, Decimal) else value)
                for name in PARCEL_FIELDS for value in [getattr(self, name)]}


def parcel_of(record: object) -> Parcel:
    """The parcel details of a stored shipment (or anything with the same attributes)."""
    return Parcel(**{name: getattr(record, name) for name in PARCEL_FIELDS})


def _(message: str) -> str:
    """Marks a message for the catalogues (pybabel extracts `_`); the caller says it in the reader's language with
    its values (Problems.said_in)."""
    return message


class Problems(dict):
    """{field: problem, in English}; `messages` keeps each as its catalogue message and values, for a caller to
    say it in the reader's language (`said_in`). `inconsistent` names the fields refused only because they do not
    fit the others (cash on delivery without an amount, an amount without it or above the declared value, one or
    two sides of three): each value is well formed, so such a booking is unprocessable (422), not malformed."""

    def __init__(self) -> None:
        super().__init__()
        self.inconsistent: set[str] = set()
        self.messages: dict[str, tuple[str, dict]] = {}

    def add(self, name: str, message: str, **values: object) -> None:
        self[name] = message % values if values else message
        self.messages[name] = (message, values)

    def conflict(self, name: str, message: str) -> None:
        self.add(name, message)
        self.inconsistent.add(name)

    def said_in(self, gettext) -> dict[str, str]:
        """Each problem through `gettext(message, **values)` (Flask-Babel's): in the reader's language."""
        return {name: gettext(message, **values) for name, (message, values) in self.messages.items()}

    @property
    def only_inconsistent(self) -> bool:
        return bool(self) and set(self) == self.inconsistent


def check_parcel(raw: Mapping[str, object], *, cod_max: Decimal, destination: str = "") -> tuple[Parcel, Problems]:
    """(the checked parcel, {field: problem}). With any problem the parcel is the defaults and must not be used.

    `destination` is the destination text: its last PIN code stands in for a missing `destination_pincode`.
    """
    problems = Problems()
    values: dict[str, object] = {}

    def text(name: str, max_chars: int) -> None:
        value = _text(raw.get(name))
        if value is _BAD:
            problems.add(name, _("Must be text."))
        elif value is not None and len(value) > max_chars:
            problems.add(name, _("At most %(max)d characters."), max=max_chars)
        elif value is not None:
            values[name] = value

    def number(name: str, low: Decimal, high: Decimal, step: Decimal, not_a_number: str, *, exact: bool) -> None:
        """`exact`: money, refused beyond the paisa; otherwise a measure, rounded half up to `step`."""
        value = _decimal(raw.get(name))
        if value is _BAD:
            problems.add(name, not_a_number)
        elif value is not None:
            rounded = value.quantize(step, rounding=ROUND_HALF_UP)
            if not low <= rounded <= high:
                problems.add(name, _("Must be from %(low)s to %(high)s."), low=_plain(low), high=_plain(high))
            elif exact and value != rounded:
                problems.add(name, _("At most 2 decimal places (to the paisa)."))
            else:
                values[name] = rounded

    def choice(name: str, allowed: tuple[str, ...]) -> None:
        value = _text(raw.get(name))
        if value is _BAD or (value is not None and value.lower() not in allowed):
            problems.add(name, _("Choose %(first)s or %(second)s."), first=allowed[0], second=allowed[1])
        elif value is not None:
            values[name] = value.lower()

    def pincode(name: str) -> None:
        value = _text(raw.get(name))
        if value is _BAD:
            problems.add(name, _("Must be text."))
        elif value is not None:
            digits = normalise_pincode(value)
            if digits is None:
                problems.add(name, _("A PIN code is 6 digits, not starting with 0."))
            else:
                values[name] = digits

    text("sender_address", ADDRESS_MAX)
    pincode("sender_pincode")
    pincode("destination_pincode")
    number("weight_kg", WEIGHT_MIN, WEIGHT_MAX, GRAM, _("Enter the weight in kg as a number."), exact=False)
    for side in ("length_cm", "width_cm", "height_cm"):
        number(side, SIDE_MIN, SIDE_MAX, MILLIMETRE, _("Enter the size in cm as a number."), exact=False)
    number("declared_value", Decimal(0), DECLARED_VALUE_MAX, PAISA,
           _("Enter the declared value in rupees as a number."), exact=True)
    number("cod_amount", PAISA, cod_max, PAISA, _("Enter the amount to collect in rupees as a number."),
           exact=True)
    text("contents", CONTENTS_MAX)
    choice("service", SERVICES)
    choice("payment", PAYMENTS)

    pickup = _boolean(raw.get("pickup"))
    if pickup is _BAD:
        problems.add("pickup", _("Must be true or false."))
    elif pickup is not None:
        values["pickup"] = pickup

    pieces = _decimal(raw.get("pieces"))
    if pieces is _BAD or (pieces is not None and pieces != pieces.to_integral_value()):
        problems.add("pieces", _("Enter the number of pieces as a whole number."))
    elif pieces is not None:
        if not PIECES_MIN <= pieces <= PIECES_MAX:
            problems.add("pieces", _("Must be from %(low)s to %(high)s."), low=PIECES_MIN, high=PIECES_MAX)
        else:
            values["pieces"] = int(pieces)

    sides = [name for name in ("length_cm", "width_cm", "height_cm") if name in values]
    if sides and len(sides) < 3:
        for name in {"length_cm", "width_cm", "height_cm"} - set(sides) - set(problems):
            problems.conflict(name, _("Give all three sides, or none."))

    payment = values.get("payment", "prepaid")
    if payment == "cod" and "cod_amount" not in values and "cod_amount" not in problems:
        problems.conflict("cod_amount", _("Enter the amount to collect on delivery."))
    elif payment != "cod" and "cod_amount" in values:
        problems.conflict("cod_amount", _("Only a cash-on-delivery booking collects an amount."))
    elif "cod_amount" in values and "declared_value" in values and values["cod_amount"] > values["declared_value"]:
        problems.conflict("cod_amount", _("Cannot be more than the declared value."))

    if "destination_pincode" not in values and "destination_pincode" not in problems:
        found = normalise_pincode(pincode_from_destination(destination))
        if found is not None:
            values["destination_pincode"] = found
            values["destination_pincode_derived"] = True
    if problems:
        return Parcel(), problems
    return Parcel(**values), problems


_BAD = object()


def _text(value: object):
    if value is None:
        return None
    if not isinstance(value, str):
        return _BAD
    value = value.strip()
    return value or None


def _decimal(value: object):
    """A number from JSON (int, float) or text ("1.5", "1,250.00", "₹ 1250"); None when absent or blank."""
    if value is None or isinstance(value, bool):
        return None if value is None else _BAD
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value))
    if not isinstance(value, str):
        return _BAD
    cleaned = value.strip().replace(",", "").removeprefix("₹").strip()
    if not cleaned:
        return None
    try:
        number = Decimal(cleaned)
    except InvalidOperation:
        return _BAD
    return number if number.is_finite() else _BAD


def _boolean(value: object):
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str):
        folded = value.strip().lower()
        if folded in _TRUE:
            return True
        if folded in _FALSE:
            return None if not folded else False
    return _BAD


def _plain(value: Decimal) -> str:
    return format(value.normalize(), "f")
