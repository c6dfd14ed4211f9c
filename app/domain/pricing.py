"""What a booking costs: zones between PIN codes, chargeable weight, freight, COD fee and tax, from a rate card.

Rules (README, "Rate card and charges"):
- Zone: `local` when both PIN codes share their first 3 digits (the sorting district), `state` when they share
  the first 2, else `national`. A destination without a known PIN code is priced as `national`.
- Chargeable weight: the larger of the actual weight and the volumetric weight (L × W × H in cm ÷ the card's
  divisor), rounded up to the next 0.5 kg. A missing actual weight counts as the first slab's weight; the
  dimensions count only when all three are given.
- Freight: the slab's first price covers up to its first weight; each further 0.5 kg, or part of one, costs its
  price per additional 0.5 kg.
- COD fee, for cash on delivery only: the larger of the card's minimum and its percentage of the amount to collect.
- Tax: the card's tax rate on freight plus COD fee. Total: freight + COD fee + tax.
- Money is Decimal, never float. Each amount is rounded half up to the paisa once, where it is computed, so the
  lines of a receipt add up to its total; amounts leave as decimal strings ("123.00").
"""
from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation

from app.domain.pincodes import normalise_pincode

ZONES: tuple[str, ...] = ("local", "state", "national")
SERVICES: tuple[str, ...] = ("standard", "express")
PAYMENTS: tuple[str, ...] = ("prepaid", "cod")
CURRENCIES: tuple[str, ...] = ("INR",)
SLAB_PARTS: tuple[str, ...] = ("first_kg", "first_price", "per_half_kg")
DEFAULT_SERVICE, DEFAULT_PAYMENT = "standard", "prepaid"
# A booking's fields that its price depends on, by the names the booking has them.
PRICING_FIELDS: tuple[str, ...] = ("destination_pincode", "sender_pincode", "service", "weight_kg", "length_cm",
                                   "width_cm", "height_cm", "payment", "cod_amount")
# Keys of a rate card's document that say where it came from; a document sent back to be saved may carry them.
READ_ONLY_KEYS = frozenset({"version", "created_at", "created_by"})

PAISA = Decimal("0.01")
HALF_KG = Decimal("0.5")
_TENTH = Decimal("0.1")
MONEY_MAX = Decimal("9999999.99")  # numeric(10, 2)
WEIGHT_MAX_KG = Decimal("1000")
DIMENSION_MAX_CM = Decimal("1000")
DIVISOR_MAX = 100_000
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")  # plain decimals only: no exponent, NaN, Infinity, "1_000" or spaces

MONEY_RULE = "An amount in rupees: 0 or more, at most 2 decimal places."
REQUIRED = "Required."
UNKNOWN_FIELD = "Unknown field."


class PricingError(ValueError):
    """A rate card or a booking's pricing fields that cannot be used; `fields` says which and why."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("; ".join(f"{name}: {message}" for name, message in fields.items()))
        self.fields = fields


@dataclass(frozen=True)
class Slab:
    first_kg: Decimal  # the first slab's weight, a multiple of 0.5 kg
    first_price: Decimal  # what the first slab costs
    per_half_kg: Decimal  # each further 0.5 kg, or part of one


@dataclass(frozen=True)
class RateCard:
    version: int
    currency: str
    tax_rate: Decimal  # a fraction: 0.18 is 18 %
    volumetric_divisor: int  # cm³ per kg
    cod_min: Decimal
    cod_percent: Decimal  # a percentage: 2 is 2 % of the amount to collect
    slabs: Mapping[tuple[str, str], Slab] = field(default_factory=dict)  # (zone, service) → slab

    def slab(self, zone: str, service: str) -> Slab:
        return self.slabs[(zone, service)]

    def as_document(self) -> dict:
        """The card as JSON: amounts as decimal strings, slabs by zone then service."""
        return {
            "version": self.version, "currency": self.currency, "tax_rate": _plain(self.tax_rate),
            "volumetric_divisor": self.volumetric_divisor,
            "cod": {"min": money_text(self.cod_min), "percent": _plain(self.cod_percent)},
            "slabs": {zone: {service: _slab_document(self.slabs[(zone, service)])
                             for service in SERVICES if (zone, service) in self.slabs}
                      for zone in ZONES},
        }

    def differences(self, other: RateCard) -> list[str]:
        """The fields (dotted, as in errors) whose values differ between two cards, in document order."""
        mine, theirs = _flatten(self.as_document()), _flatten(other.as_document())
        return [name for name in mine if name != "version" and mine[name] != theirs.get(name)]


def _slab_document(slab: Slab) -> dict[str, str]:
    return {"first_kg": weight_text(slab.first_kg), "first_price": money_text(slab.first_price),
            "per_half_kg": money_text(slab.per_half_kg)}


@dataclass(frozen=True)
class Charges:
    zone: str
    chargeable_weight_kg: Decimal
    freight: Decimal
    cod_fee: Decimal
    tax: Decimal
    total: Decimal
    currency: str
    rate_card_version: int

    def as_dict(self) -> dict:
        """The charges as staff, the API and the booker see them: money and weight as decimal strings."""
        return {"zone": self.zone, "chargeable_weight_kg": weight_text(self.chargeable_weight_kg),
                "freight": money_text(self.freight), "cod_fee": money_text(self.cod_fee), "tax": money_text(self.tax),
                "total": money_text(self.total), "currency": self.currency,
                "rate_card_version": self.rate_card_version}


@dataclass(frozen=True)
class PricingInputs:
    """A booking's pricing fields, read and checked (see read_pricing_inputs)."""

    destination_pin: str | None
    sender_pin: str | None
    service: str
    weight_kg: Decimal | None
    length_cm: Decimal | None
    width_cm: Decimal | None
    height_cm: Decimal | None
    payment: str
    cod_amount: Decimal | None


def money(value: Decimal) -> Decimal:
    """Rounded half up to the paisa."""
    return value.quantize(PAISA, rounding=ROUND_HALF_UP)


def money_text(value: Decimal) -> str:
    """"123.00": two places, never an exponent."""
    return f"{money(value):f}"


def weight_text(value: Decimal) -> str:
    """"5.0", "0.5": chargeable weights are multiples of 0.5 kg, so one place is exact."""
    return f"{value.quantize(_TENTH, rounding=ROUND_CEILING):f}"


def _plain(value: Decimal) -> str:
    """A rate or percentage without trailing zeros, never an exponent: "0.18", "2", "2.5"."""
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def zone_between(from_pin: str, to_pin: str) -> str:
    """`local` (same first 3 digits: one sorting district), `state` (same first 2) or `national`."""
    origin, destination = normalise_pincode(from_pin), normalise_pincode(to_pin)
    if origin is None or destination is None:
        raise ValueError("zone_between needs two six-digit PIN codes")
    if origin[:3] == destination[:3]:
        return "local"
    if origin[:2] == destination[:2]:
        return "state"
    return "national"


def chargeable_weight(weight_kg: Decimal | None, length: Decimal | None, width: Decimal | None,
                      height: Decimal | None, divisor: int, first_slab_kg: Decimal) -> Decimal:
    """max(actual, L × W × H ÷ divisor), rounded up to the next 0.5 kg. No actual weight: the first slab's.
    The volumetric weight counts only when all three dimensions (cm) are given."""
    if divisor <= 0:
        raise ValueError("the volumetric divisor must be positive")
    weight = first_slab_kg if weight_kg is None else weight_kg
    if None not in (length, width, height):
        weight = max(weight, length * width * height / Decimal(divisor))
    halves = (weight / HALF_KG).to_integral_value(rounding=ROUND_CEILING)
    return max(halves, Decimal(1)) * HALF_KG


def freight_for(slab: Slab, weight_kg: Decimal) -> Decimal:
    """The first slab's price, and each further 0.5 kg (or part) at the slab's rate."""
    extra = max(weight_kg - slab.first_kg, Decimal(0))
    halves = (extra / HALF_KG).to_integral_value(rounding=ROUND_CEILING)
    return money(slab.first_price + halves * slab.per_half_kg)


def cod_fee_for(card: RateCard, payment: str, cod_amount: Decimal | None) -> Decimal:
    """max(minimum, percentage × amount to collect) for cash on delivery; nothing for prepaid."""
    if payment != "cod":
        return money(Decimal(0))
    percentage = money((cod_amount or Decimal(0)) * card.cod_percent / 100)
    return money(max(card.cod_min, percentage))


def price(card: RateCard, *, origin_pin: str, destination_pin: str | None, service: str,
          weight_kg: Decimal | None, length_cm: Decimal | None, width_cm: Decimal | None,
          height_cm: Decimal | None, payment: str, cod_amount: Decimal | None) -> Charges:
    """The charges of one booking on `card` (inputs already read: see read_pricing_inputs)."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    if payment not in PAYMENTS:
        raise ValueError(f"unknown payment {payment!r}")
    zone = "national" if destination_pin is None else zone_between(origin_pin, destination_pin)
    slab = card.slab(zone, service)
    weight = chargeable_weight(weight_kg, length_cm, width_cm, height_cm, card.volumetric_divisor, slab.first_kg)
    freight = freight_for(slab, weight)
    cod_fee = cod_fee_for(card, payment, cod_amount)
    tax = money((freight + cod_fee) * card.tax_rate)
    return Charges(zone=zone, chargeable_weight_kg=weight, freight=freight, cod_fee=cod_fee, tax=tax,
                   total=freight + cod_fee + tax, currency=card.currency, rate_card_version=card.version)


# --- reading what people send -------------------------------------------------------------------------------------

def decimal_value(value: object) -> Decimal | None:
    """A JSON number or a plain decimal string as a Decimal; None for anything else (booleans, NaN, "1e3", "")."""
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value if value.is_finite() else None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        value = repr(value)  # 0.18 is read as "0.18", the number that was written, not its binary neighbour
    if not isinstance(value, str) or not _NUMBER.fullmatch(value.strip()):
        return None
    try:
        return Decimal(value.strip())
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
        return None


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _checked(value: object, *, low: Decimal, high: Decimal, places: int, low_open: bool = False) -> Decimal | None:
    number = decimal_value(value)
    if number is None or _places(number) > places or number > high:
        return None
    if number < low or (low_open and number == low):
        return None
    return number


def read_rate_card(document: object, version: int) -> RateCard:
    """A rate card from its JSON document (as RateCard.as_document writes it); PricingError names every field that
    is missing, unknown or out of range, with dotted names ("slabs.local.express.first_price")."""
    if not isinstance(document, Mapping):
        raise PricingError({"rate_card": "Must be a JSON object."})
    errors: dict[str, str] = {}
    known = {"currency", "tax_rate", "volumetric_divisor", "cod", "slabs"} | READ_ONLY_KEYS
    errors.update({str(name): UNKNOWN_FIELD for name in document if name not in known})

    currency = document.get("currency", "INR")
    if not isinstance(currency, str) or currency.strip().upper() not in CURRENCIES:
        errors["currency"] = f"Must be one of: {', '.join(CURRENCIES)}."
        currency = "INR"
    tax_rate = _required(document, "tax_rate", errors, "A fraction from 0 to 1, at most 4 decimal places "
                         "(0.18 is 18 %).", low=Decimal(0), high=Decimal(1), places=4)
    divisor = _required(document, "volumetric_divisor", errors, f"A whole number of cm³ per kg, from 1 to "
                        f"{DIVISOR_MAX} (5000 is usual).", low=Decimal(1), high=Decimal(DIVISOR_MAX), places=0)

    cod = document.get("cod")
    cod_min = cod_percent = None
    if not isinstance(cod, Mapping):
        errors["cod"] = REQUIRED if cod is None else "Must be an object with min and percent."
    else:
        errors.update({f"cod.{name}": UNKNOWN_FIELD for name in cod if name not in ("min", "percent")})
        cod_min = _required(cod, "min", errors, MONEY_RULE, low=Decimal(0), high=MONEY_MAX, places=2, prefix="cod.")
        cod_percent = _required(cod, "percent", errors, "A percentage from 0 to 100, at most 2 decimal places.",
                                low=Decimal(0), high=Decimal(100), places=2, prefix="cod.")

    slabs = _read_slabs(document.get("slabs"), errors)
    if errors:
        raise PricingError(errors)
    return RateCard(version=version, currency=currency.strip().upper(), tax_rate=tax_rate,
                    volumetric_divisor=int(divisor), cod_min=cod_min, cod_percent=cod_percent, slabs=slabs)


def _required(source: Mapping, name: str, errors: dict[str, str], rule: str, *, low: Decimal, high: Decimal,
              places: int, low_open: bool = False, prefix: str = "") -> Decimal | None:
    value = source.get(name)
    if value is None:
        errors[prefix + name] = REQUIRED
        return None
    number = _checked(value, low=low, high=high, places=places, low_open=low_open)
    if number is None:
        errors[prefix + name] = rule
    return number


def _read_slabs(slabs: object, errors: dict[str, str]) -> dict[tuple[str, str], Slab]:
    if not isinstance(slabs, Mapping):
        errors["slabs"] = REQUIRED if slabs is None else "Must be an object: zone → service → slab."
        return {}
    read: dict[tuple[str, str], Slab] = {}
    for zone in slabs:
        if zone not in ZONES:
            errors[f"slabs.{zone}"] = f"Unknown zone; zones are {', '.join(ZONES)}."
    for zone in ZONES:
        services = slabs.get(zone)
        if not isinstance(services, Mapping):
            errors[f"slabs.{zone}"] = REQUIRED if services is None else "Must be an object: service → slab."
            continue
        for service in services:
            if service not in SERVICES:
                errors[f"slabs.{zone}.{service}"] = f"Unknown service; services are {', '.join(SERVICES)}."
        for service in SERVICES:
            path = f"slabs.{zone}.{service}"
            slab = services.get(service)
            if not isinstance(slab, Mapping):
                errors[path] = REQUIRED if slab is None else "Must be an object: first_kg, first_price, per_half_kg."
                continue
            errors.update({f"{path}.{name}": UNKNOWN_FIELD for name in slab if name not in SLAB_PARTS})
            first_kg = _required(slab, "first_kg", errors, "A weight in kg, a multiple of 0.5, from 0.5 to 1000.",
                                 low=Decimal(0), high=WEIGHT_MAX_KG, places=1, low_open=True, prefix=f"{path}.")
            if first_kg is not None and first_kg % HALF_KG:
                errors[f"{path}.first_kg"] = "A weight in kg, a multiple of 0.5, from 0.5 to 1000."
                first_kg = None
            first_price = _required(slab, "first_price", errors, MONEY_RULE, low=Decimal(0), high=MONEY_MAX,
                                    places=2, prefix=f"{path}.")
            per_half_kg = _required(slab, "per_half_kg", errors, MONEY_RULE, low=Decimal(0), high=MONEY_MAX,
                                    places=2, prefix=f"{path}.")
            if None not in (first_kg, first_price, per_half_kg):
                read[(zone, service)] = Slab(first_kg, first_price, per_half_kg)
    return read


def read_pricing_inputs(*, destination_pincode: object = None, sender_pincode: object = None,
                        service: object = None, weight_kg: object = None, length_cm: object = None,
                        width_cm: object = None, height_cm: object = None, payment: object = None,
                        cod_amount: object = None) -> PricingInputs:
    """A booking's pricing fields from JSON values, form text or stored columns (None or "" is "not given");
    PricingError names each field that cannot be used, by the booking's field names.

    Defaults: service standard, payment prepaid, no destination PIN (priced as national), no weight (the first
    slab). The dimensions come all three or none; cash on delivery needs the amount to collect, prepaid has none."""
    errors: dict[str, str] = {}

    def given(value: object) -> bool:
        return value is not None and not (isinstance(value, str) and not value.strip())

    def pin(name: str, value: object) -> str | None:
        if not given(value):
            return None
        found = normalise_pincode(value)
        if found is None:
            errors[name] = "A six-digit PIN code, such as 682031."
        return found

    def choice(name: str, value: object, choices: tuple[str, ...], default: str) -> str:
        if not given(value):
            return default
        if isinstance(value, str) and value.strip().lower() in choices:
            return value.strip().lower()
        errors[name] = f"Must be one of: {', '.join(choices)}."
        return default

    def number(name: str, value: object, high: Decimal, places: int, rule: str) -> Decimal | None:
        if not given(value):
            return None
        found = _checked(value, low=Decimal(0), high=high, places=places, low_open=True)
        if found is None:
            errors[name] = rule
        return found

    weight_rule = f"A weight in kg, more than 0 and at most {WEIGHT_MAX_KG}, at most 3 decimal places."
    size_rule = f"A length in cm, more than 0 and at most {DIMENSION_MAX_CM}, at most 1 decimal place."
    inputs = PricingInputs(
        destination_pin=pin("destination_pincode", destination_pincode),
        sender_pin=pin("sender_pincode", sender_pincode),
        service=choice("service", service, SERVICES, DEFAULT_SERVICE),
        weight_kg=number("weight_kg", weight_kg, WEIGHT_MAX_KG, 3, weight_rule),
        length_cm=number("length_cm", length_cm, DIMENSION_MAX_CM, 1, size_rule),
        width_cm=number("width_cm", width_cm, DIMENSION_MAX_CM, 1, size_rule),
        height_cm=number("height_cm", height_cm, DIMENSION_MAX_CM, 1, size_rule),
        payment=choice("payment", payment, PAYMENTS, DEFAULT_PAYMENT),
        cod_amount=number("cod_amount", cod_amount, MONEY_MAX, 2, "An amount in rupees, more than 0, at most 2 "
                          "decimal places."),
    )
    dimensions = {"length_cm": length_cm, "width_cm": width_cm, "height_cm": height_cm}
    if any(given(v) for v in dimensions.values()):
        for name, value in dimensions.items():
            if not given(value):
                errors.setdefault(name, "Give all three dimensions, or none.")
    if inputs.payment == "cod" and not given(cod_amount):
        errors.setdefault("cod_amount", "Cash on delivery needs the amount to collect.")
    if inputs.payment == "prepaid" and given(cod_amount):
        errors.setdefault("cod_amount", "Only for cash on delivery (payment cod).")
    if errors:
        raise PricingError(errors)
    return inputs


def _flatten(document: Mapping, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for name, value in document.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{name}."))
        else:
            flat[f"{prefix}{name}"] = value
    return flat


def _default_card() -> RateCard:
    def slab(first_price: str, per_half_kg: str) -> Slab:
        return Slab(Decimal("0.5"), Decimal(first_price), Decimal(per_half_kg))

    return RateCard(version=1, currency="INR", tax_rate=Decimal("0.18"), volumetric_divisor=5000,
                    cod_min=Decimal("40.00"), cod_percent=Decimal("2"), slabs={
                        ("local", "standard"): slab("40.00", "20.00"),
                        ("local", "express"): slab("60.00", "30.00"),
                        ("state", "standard"): slab("55.00", "30.00"),
                        ("state", "express"): slab("85.00", "45.00"),
                        ("national", "standard"): slab("75.00", "45.00"),
                        ("national", "express"): slab("120.00", "70.00"),
                    })


# Version 1: what a new install prices with. Migration 0017 stores this same card as version 1, so the number a
# booking keeps always names these prices; change prices by saving a new version, never by editing this.
DEFAULT_RATE_CARD = _default_card()
