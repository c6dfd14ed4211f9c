"""Booking receipts for the counter: one A5 page with the tracking ID, sender, receiver, destination and charges.

Rules: the renderer prints what a ReceiptData holds and reads nothing else, so it does not depend on how a
shipment stores its booking. receipt_for fills one from a shipment: the charges it stored when it was booked
(`charges`, with `rate_card_version`), or, when it stored none, its charges priced now on the card in force from
whatever pricing fields it has (standard, prepaid and the first slab when it has none), and the receipt says so.
Never an email address or a mobile number. Its own words are English; names and addresses print as typed, Hindi
included, in the labels' embedded font (label_text). Printing one is audited (`receipt_printed`), as printing a
label is: it carries names, an address and prices.
"""
from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from reportlab.graphics.barcode import code128
from reportlab.lib.pagesizes import A5
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from app.domain.links import tracking_url
from app.domain.pincodes import normalise_pincode, pincode_from_destination
from app.domain.pricing import DEFAULT_PAYMENT, DEFAULT_SERVICE, PRICING_FIELDS, decimal_value, money_text
from app.domain.timeutil import to_local
from app.errors import NotFound
from app.i18n.locales import format_local_date
from app.services.shipments.label_text import BOLD, REGULAR, draw_text, register_fonts, wrap
from app.services.shipments.rates import card_version, charges_for, origin_pincode
from app.services.staff.audit import record_audit

RECEIPT_LANGUAGE = "en"
_MARGIN = 12 * mm
_SERVICE_NAMES = {"standard": "Standard", "express": "Express"}
_PAYMENT_NAMES = {"prepaid": "Prepaid", "cod": "Cash on delivery"}
_ZONE_NAMES = {"local": "Local", "state": "Within the state", "national": "National"}


@dataclass(frozen=True)
class ReceiptData:
    """Everything a receipt prints. `charges` has the shape of Charges.as_dict (amounts as decimal strings)."""

    tracking_id: str
    booked_at: datetime | None
    sender_name: str
    receiver_name: str
    destination: str
    charges: Mapping[str, object]
    service: str = DEFAULT_SERVICE
    payment: str = DEFAULT_PAYMENT
    origin_pincode: str | None = None
    destination_pincode: str | None = None
    weight_kg: str | None = None  # as booked: "2.5"
    dimensions_cm: str | None = None  # "40 × 30 × 20"
    cod_amount: str | None = None  # to collect on delivery: "1500.00"
    tax_rate: str | None = None  # of the card the charges come from: "0.18"
    priced_at_booking: bool = True  # False: the booking stored no charges; priced when the receipt was printed
    tracking_url: str | None = None


def receipt_for(shipment: object, public_base_url: str | None = None) -> ReceiptData:
    """A shipment's receipt: its stored charges, else its charges priced now (see the module's rules).

    Read from the shipment: tracking_id, created_at, sender_name, receiver_name, destination; and, each only if it
    has it, charges (Charges.as_dict's shape), rate_card_version and the pricing fields (PRICING_FIELDS)."""
    fields = {name: getattr(shipment, name, None) for name in PRICING_FIELDS}
    service = _choice(fields["service"], _SERVICE_NAMES, DEFAULT_SERVICE)
    payment = _choice(fields["payment"], _PAYMENT_NAMES, DEFAULT_PAYMENT)
    destination_pin = (normalise_pincode(fields["destination_pincode"])
                       or normalise_pincode(pincode_from_destination(shipment.destination)))
    sender_pin = normalise_pincode(fields["sender_pincode"])
    stored = getattr(shipment, "charges", None)
    if isinstance(stored, Mapping) and stored.get("total") is not None:
        charges = dict(stored)
        if charges.get("rate_card_version") is None:
            charges["rate_card_version"] = getattr(shipment, "rate_card_version", None)
        priced_at_booking = True
    else:
        charges = charges_for(destination_pincode=destination_pin, sender_pincode=sender_pin, service=service,
                              payment=payment, weight_kg=fields["weight_kg"], length_cm=fields["length_cm"],
                              width_cm=fields["width_cm"], height_cm=fields["height_cm"],
                              cod_amount=fields["cod_amount"] if payment == "cod" else None).as_dict()
        priced_at_booking = False
    dimensions = [_number_text(fields[name]) for name in ("length_cm", "width_cm", "height_cm")]
    return ReceiptData(
        tracking_id=shipment.tracking_id, booked_at=getattr(shipment, "created_at", None),
        sender_name=shipment.sender_name, receiver_name=shipment.receiver_name, destination=shipment.destination,
        charges=charges, service=service, payment=payment, origin_pincode=sender_pin or origin_pincode(),
        destination_pincode=destination_pin, weight_kg=_number_text(fields["weight_kg"]),
        dimensions_cm=" × ".join(dimensions) if None not in dimensions else None,
        cod_amount=_money_text(fields["cod_amount"]) if payment == "cod" else None,
        tax_rate=_tax_rate_of(charges.get("rate_card_version")), priced_at_booking=priced_at_booking,
        tracking_url=tracking_url(public_base_url, shipment.tracking_id) if public_base_url else None)


def print_receipt(shipment: object, *, actor: str, timezone: str, public_base_url: str | None = None) -> bytes:
    """A shipment's receipt as a PDF, audited (`receipt_printed`, on the shipment) in the caller's transaction."""
    data = receipt_for(shipment, public_base_url)
    pdf = render_receipt(data, timezone)
    record_audit("receipt_printed", actor=actor, target_type="shipment", target_id=shipment.tracking_id,
                 details={"total": data.charges.get("total"),
                          "rate_card_version": data.charges.get("rate_card_version"),
                          "priced_at_booking": data.priced_at_booking})
    return pdf


def render_receipt(data: ReceiptData, timezone: str) -> bytes:
    """The receipt as a one-page A5 PDF."""
    register_fonts()
    width, height = A5
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=A5, pageCompression=1)
    pdf.setTitle(f"Waybill receipt {data.tracking_id}")
    pdf.setCreator("Waybill")
    left, right = _MARGIN, width - _MARGIN
    y = height - _MARGIN

    draw_text(pdf, left, y - 14, "WAYBILL", BOLD, 14)
    draw_text(pdf, right, y - 13, "Booking receipt", REGULAR, 11, align="right")
    y -= 22
    pdf.setLineWidth(1)
    pdf.line(left, y, right, y)

    y -= 12
    draw_text(pdf, left, y, "TRACKING ID", REGULAR, 8)
    if data.booked_at is not None:
        draw_text(pdf, right, y, f"Booked {_booked_text(data.booked_at, timezone)}", REGULAR, 8, align="right")
    y -= 28
    pdf.setFont("Courier-Bold", 28)  # fixed width: every character of the ID reads apart, as on labels
    pdf.drawString(left, y, data.tracking_id)
    barcode = code128.Code128(data.tracking_id, barHeight=24, barWidth=1.1, quiet=False)
    barcode.drawOn(pdf, right - barcode.width, y - 4)
    y -= 14
    pdf.line(left, y, right, y)

    column = (right - left - 6 * mm) / 2
    bottom_from = _party(pdf, "FROM", data.sender_name, [f"PIN {data.origin_pincode}"] if data.origin_pincode
                         else [], left, y - 4, column)
    bottom_to = _party(pdf, "TO", data.receiver_name, [data.destination], left + column + 6 * mm, y - 4, column)
    y = min(bottom_from, bottom_to) - 4
    pdf.line(left, y, right, y)

    y = _rows(pdf, "SHIPMENT", _shipment_rows(data), left, right, y - 4)
    pdf.line(left, y, right, y)
    _charges(pdf, data, left, right, y - 4)

    version = data.charges.get("rate_card_version")
    note = (f"Priced with rate card version {version} when booked." if data.priced_at_booking else
            f"No charges were stored with this booking: priced when this receipt was printed, with rate card "
            f"version {version}.")
    lines = wrap(note, REGULAR, 8, right - left)
    if data.tracking_url:
        lines += wrap(f"Track this parcel: {data.tracking_url}", REGULAR, 8, right - left)
    for index, line in enumerate(reversed(lines)):
        draw_text(pdf, left, _MARGIN + index * 10, line, REGULAR, 8)
    pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _party(pdf: canvas.Canvas, heading: str, name: str, lines: list[str], left: float, y: float,
           width: float) -> float:
    """A FROM/TO block, names and addresses as typed (Hindi included); returns the y below it."""
    draw_text(pdf, left, y - 8, heading, BOLD, 8)
    y -= 22
    for line in wrap(name, BOLD, 12, width)[:2]:
        draw_text(pdf, left, y, line, BOLD, 12)
        y -= 15
    for text in lines:
        for line in wrap(text, REGULAR, 10, width)[:4]:
            draw_text(pdf, left, y, line, REGULAR, 10)
            y -= 13
    return y


def _shipment_rows(data: ReceiptData) -> list[tuple[str, str]]:
    payment = _PAYMENT_NAMES.get(data.payment, data.payment)
    if data.cod_amount:
        payment += f" (collect {data.charges.get('currency', 'INR')} {data.cod_amount})"
    zone = str(data.charges.get("zone", ""))
    route = f" ({data.origin_pincode} to {data.destination_pincode})" if data.destination_pincode \
        else " (no destination PIN code: priced as national)"
    rows = [("Service", _SERVICE_NAMES.get(data.service, data.service)), ("Payment", payment),
            ("Zone", _ZONE_NAMES.get(zone, zone) + route)]
    if data.weight_kg:
        rows.append(("Weight", f"{data.weight_kg} kg"))
    if data.dimensions_cm:
        rows.append(("Dimensions", f"{data.dimensions_cm} cm"))
    chargeable = data.charges.get("chargeable_weight_kg")
    rows.append(("Chargeable weight", f"{chargeable} kg" if data.weight_kg or data.dimensions_cm
                 else f"{chargeable} kg (no weight given: the first slab)"))
    return rows


def _rows(pdf: canvas.Canvas, heading: str, rows: list[tuple[str, str]], left: float, right: float,
          y: float) -> float:
    draw_text(pdf, left, y - 8, heading, BOLD, 8)
    y -= 22
    for label, value in rows:
        draw_text(pdf, left, y, label, REGULAR, 10)
        for line in wrap(value, REGULAR, 10, (right - left) * 0.62)[:2]:
            draw_text(pdf, right, y, line, REGULAR, 10, align="right")
            y -= 14
    return y


def _charges(pdf: canvas.Canvas, data: ReceiptData, left: float, right: float, y: float) -> float:
    currency = str(data.charges.get("currency", "INR"))
    draw_text(pdf, left, y - 8, "CHARGES", BOLD, 8)
    y -= 22
    tax_label = f"Tax ({_percent(data.tax_rate)})" if data.tax_rate else "Tax"
    lines = [("Freight", data.charges.get("freight"))]
    if data.payment == "cod" or _nonzero(data.charges.get("cod_fee")):
        lines.append(("COD fee", data.charges.get("cod_fee")))
    lines.append((tax_label, data.charges.get("tax")))
    for label, amount in lines:
        draw_text(pdf, left, y, label, REGULAR, 10)
        draw_text(pdf, right, y, f"{currency} {amount}", REGULAR, 10, align="right")
        y -= 15
    pdf.line(right - 60 * mm, y + 8, right, y + 8)
    y -= 8
    draw_text(pdf, left, y, "Total", BOLD, 14)
    draw_text(pdf, right, y, f"{currency} {data.charges.get('total')}", BOLD, 14, align="right")
    return y - 10


def _booked_text(moment: datetime, timezone: str) -> str:
    local = to_local(moment, timezone)
    return f"{format_local_date(moment, timezone, language=RECEIPT_LANGUAGE)}, {local:%H:%M} {local.tzname()}"


def _choice(value: object, names: Mapping[str, str], default: str) -> str:
    text = value.strip().lower() if isinstance(value, str) else ""
    return text if text in names else default


def _number_text(value: object) -> str | None:
    number = decimal_value(value)
    return None if number is None else f"{number.normalize():f}"


def _money_text(value: object) -> str | None:
    number = decimal_value(value)
    return None if number is None else money_text(number)


def _nonzero(amount: object) -> bool:
    number = decimal_value(amount)
    return number is not None and number != 0


def _percent(rate: str) -> str:
    number = decimal_value(rate)
    return "" if number is None else f"{(number * 100).normalize():f} %"


def _tax_rate_of(version: object) -> str | None:
    if not isinstance(version, int) or isinstance(version, bool):
        return None
    try:
        return card_version(version).as_document()["tax_rate"]
    except NotFound:
        return None
