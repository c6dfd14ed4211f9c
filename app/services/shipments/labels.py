"""Printable shipping labels: one page per piece of each shipment, 4×6 in (thermal printers) or A6.

Rules: a label carries the tracking ID in large type, a Code 128 barcode of it (the same on every piece: hubs scan
the shipment), a QR code of the public tracking URL, the piece ("2 of 3"), the destination PIN as a large sort
code, service and weight, the receiver's name, full mobile (the courier calls the receiver) and destination, the
sender's name and PIN, the booking date, and for cash on delivery a boxed "COLLECT ₹1,250.00". Never an email
address, nor the sender's mobile. Labels are for staff only (signed-in staff or an API key). Names and addresses
print as typed, Hindi included (label_text.py); every other word is English. At most MAX_LABELS shipments and
MAX_PAGES pages per document; shipments are printed in the order given, each once.
"""
from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode import code128, qr
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A6
from reportlab.lib.units import inch, mm
from reportlab.pdfgen import canvas
from sqlalchemy import select

from app.domain.links import tracking_url
from app.domain.pincodes import normalise_pincode, pincode_from_destination
from app.domain.tracking_ids import normalise_tracking_id
from app.errors import ValidationError
from app.extensions import db
from app.i18n.locales import format_local_date, format_rupees, format_weight_kg
from app.models import Shipment
from app.services.shipments.contacts import format_mobile
from app.services.shipments.label_text import BOLD, REGULAR, draw_text, fit_lines, register_fonts, text_width, wrap
from app.services.staff.audit import record_audit

MAX_LABELS = 500
MAX_PAGES = 1000  # pieces included: a batch of many-piece shipments is still one printable document
LABEL_SIZES: dict[str, tuple[float, float]] = {"4x6": (4 * inch, 6 * inch), "a6": A6}
DEFAULT_SIZE = "4x6"
# A label's own words and its date are in English whatever the booking's or the request's language: it is read
# by hub staff and couriers anywhere in the country. Names and addresses print as they were typed.
LABEL_LANGUAGE = "en"
_MARGIN = 5 * mm
_TRACKING_ID_FONT = "Courier-Bold"  # fixed width: every character of the ID reads apart


@dataclass(frozen=True)
class LabelOptions:
    size: str
    public_base_url: str
    timezone: str


@dataclass(frozen=True)
class LabelData:
    """What one shipment's labels print; everything but the ID and the names may be unknown (None)."""
    tracking_id: str
    sender_name: str
    receiver_name: str
    destination: str = ""
    mobile: str | None = None  # the receiver's, E.164
    booked_at: datetime | None = None
    sender_pincode: str | None = None
    destination_pincode: str | None = None
    weight_kg: Decimal | None = None
    pieces: int = 1
    service: str | None = None  # "standard" | "express"
    payment: str | None = None  # "prepaid" | "cod"
    cod_amount: Decimal | None = None  # rupees

    @property
    def sort_code(self) -> str | None:
        """The destination PIN hubs sort by: the booked one, else the last PIN code written in the destination."""
        if self.destination_pincode:
            return self.destination_pincode.strip()
        return normalise_pincode(pincode_from_destination(self.destination))

    @property
    def piece_count(self) -> int:
        return self.pieces if isinstance(self.pieces, int) and self.pieces > 0 else 1

    @property
    def collect_on_delivery(self) -> bool:
        return self.payment == "cod"


def label_data(shipment: Any) -> LabelData:
    """A shipment's label contents: the one place a label reads a shipment."""
    return LabelData(
        tracking_id=shipment.tracking_id,
        sender_name=shipment.sender_name,
        receiver_name=shipment.receiver_name,
        destination=shipment.destination or "",
        mobile=shipment.mobile,
        booked_at=shipment.created_at,
        sender_pincode=shipment.sender_pincode,
        destination_pincode=shipment.destination_pincode,
        weight_kg=shipment.weight_kg,
        pieces=shipment.pieces or 1,
        service=shipment.service,
        payment=shipment.payment,
        cod_amount=shipment.cod_amount,
    )


def label_size(value: str | None) -> str:
    """The label size named by `value` (any case; None means the default); ValidationError otherwise."""
    size = (value or DEFAULT_SIZE).strip().lower()
    if size not in LABEL_SIZES:
        raise ValidationError(fields={"size": f"Must be one of: {', '.join(LABEL_SIZES)}."})
    return size


def shipments_for_labels(tracking_ids: list[str]) -> list[Shipment]:
    """The shipments to print, in the order given, each once; every ID must exist (ValidationError lists those
    that do not, so a batch is never printed with parcels silently missing)."""
    if not tracking_ids:
        raise ValidationError(fields={"tracking_ids": "Give at least one tracking ID."})
    if len(tracking_ids) > MAX_LABELS:
        raise ValidationError(fields={"tracking_ids": f"At most {MAX_LABELS} labels at once."})
    canonical: dict[str, str] = {}
    unknown = []
    for typed in tracking_ids:
        tracking_id = normalise_tracking_id(typed) if isinstance(typed, str) else None
        if tracking_id is None:
            unknown.append(str(typed)[:32])
        else:
            canonical.setdefault(tracking_id, typed)
    found = {s.tracking_id: s for s in db.session.scalars(
        select(Shipment).where(Shipment.tracking_id.in_(list(canonical))))}
    unknown += [typed.strip()[:32] for tracking_id, typed in canonical.items() if tracking_id not in found]
    if unknown:
        raise ValidationError(f"No shipment has the tracking ID(s): {', '.join(unknown[:20])}.",
                              fields={"tracking_ids": f"Unknown: {', '.join(unknown[:20])}"})
    return [found[tracking_id] for tracking_id in canonical]


def print_label(shipment: Shipment, options: LabelOptions, *, actor: str, via: str | None = None) -> bytes:
    """One shipment's label, audited (`labels_printed`, on the shipment) in the caller's transaction: a label
    carries names and an address. `via` names the door it was asked through ("api"), when not a staff page."""
    pdf = render_labels([shipment], options)
    record_audit("labels_printed", actor=actor, target_type="shipment", target_id=shipment.tracking_id,
                 details={"count": 1, "size": options.size, **({"via": via} if via else {})})
    return pdf


def print_labels(shipments: list[Shipment], options: LabelOptions, *, actor: str) -> bytes:
    """Labels for a selection, audited once for the batch (`labels_printed`, naming up to 50 of its IDs)."""
    pdf = render_labels(shipments, options)
    record_audit("labels_printed", actor=actor, target_type="shipments", target_id=f"{len(shipments)} shipments",
                 details={"count": len(shipments), "size": options.size,
                          "tracking_ids": [s.tracking_id for s in shipments[:50]]})
    return pdf


def render_labels(shipments: Sequence[Shipment], options: LabelOptions) -> bytes:
    """A PDF with one label page per piece of each shipment, in order."""
    return render_label_pages([label_data(shipment) for shipment in shipments], options)


def render_label_pages(labels: Sequence[LabelData], options: LabelOptions) -> bytes:
    """A PDF with a page for each piece of each label ("1 of 3", "2 of 3", …); ValidationError past MAX_PAGES."""
    pages = sum(label.piece_count for label in labels)
    if pages > MAX_PAGES:
        raise ValidationError(f"These shipments have {pages} pieces: at most {MAX_PAGES} labels print at once.",
                              fields={"tracking_ids": f"At most {MAX_PAGES} pieces at once ({pages} asked)."})
    register_fonts()
    width, height = LABEL_SIZES[options.size]
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(width, height), pageCompression=1)
    pdf.setTitle(f"Waybill label {labels[0].tracking_id}" if len(labels) == 1 else "Waybill labels")
    pdf.setCreator("Waybill")
    for label in labels:
        for piece in range(1, label.piece_count + 1):
            _draw_label(pdf, label, piece, width, height, options)
            pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _draw_label(pdf: canvas.Canvas, label: LabelData, piece: int, width: float, height: float,
                options: LabelOptions) -> None:
    left, right, top, bottom = _MARGIN, width - _MARGIN, height - _MARGIN, _MARGIN
    usable = right - left
    pdf.setLineWidth(1)

    draw_text(pdf, left, top - 11, "WAYBILL", BOLD, 11)
    if label.booked_at is not None:
        booked = format_local_date(label.booked_at, options.timezone, language=LABEL_LANGUAGE)
        draw_text(pdf, right, top - 10, f"Booked {booked}", REGULAR, 9, align="right")
    pdf.line(left, top - 15, right, top - 15)

    # The tracking ID as large as fits the width, then its Code 128 (quiet zones included), centred.
    id_size = min(30.0, usable / pdf.stringWidth(label.tracking_id, _TRACKING_ID_FONT, 1))
    y = top - 17 - id_size
    pdf.setFont(_TRACKING_ID_FONT, id_size)
    pdf.drawCentredString(width / 2, y, label.tracking_id)
    bar_height = 0.7 * inch
    barcode = code128.Code128(label.tracking_id, barHeight=bar_height, barWidth=1.0, quiet=True)
    bar_width = min(usable / barcode.width, 2.2)
    barcode = code128.Code128(label.tracking_id, barHeight=bar_height, barWidth=bar_width, quiet=True)
    y -= bar_height + 8
    barcode.drawOn(pdf, (width - barcode.width) / 2, y)

    y -= 6
    pdf.line(left, y, right, y)
    y = _sort_band(pdf, label, piece, left, right, y)
    pdf.line(left, y, right, y)

    # What the bottom needs below the receiver: the COD box, then the sender and a QR code of at least 0.9 in.
    cod_height = 30.0 if label.collect_on_delivery else 0.0
    y = _receiver(pdf, label, left, usable, y, floor=bottom + cod_height + 0.9 * inch + 8)
    pdf.line(left, y, right, y)
    if label.collect_on_delivery:
        y = _collect_box(pdf, label, left, usable, y - 3)
    _sender_and_qr(pdf, label, left, right, bottom, y, options)


def _sort_band(pdf: canvas.Canvas, label: LabelData, piece: int, left: float, right: float, y: float) -> float:
    """The destination PIN, boxed and large, for sorting; the piece, service, weight and payment beside it.
    Returns the y below the band."""
    band = 48.0
    sort_code = label.sort_code
    if sort_code:
        size = 34.0
        box_width = text_width(sort_code, BOLD, size) + 12
        pdf.setLineWidth(2)
        pdf.rect(left, y - band + 3, box_width, band - 6)
        pdf.setLineWidth(1)
        draw_text(pdf, left + 6, y - band + 3 + (band - 6 - 0.714 * size) / 2, sort_code, BOLD, size)
    draw_text(pdf, right, y - 17, f"{piece} of {label.piece_count}", BOLD, 17, align="right")
    details = [label.service.upper()] if label.service else []
    if label.weight_kg is not None:
        details.append(format_weight_kg(label.weight_kg))
    if details:
        draw_text(pdf, right, y - 30, " · ".join(details), BOLD, 10, align="right")
    if label.payment == "prepaid":
        draw_text(pdf, right, y - 42, "PREPAID", REGULAR, 9, align="right")
    elif label.collect_on_delivery:
        draw_text(pdf, right, y - 42, "CASH ON DELIVERY", BOLD, 9, align="right")
    return y - band


def _receiver(pdf: canvas.Canvas, label: LabelData, left: float, width: float, y: float, floor: float) -> float:
    """The TO block: name, full mobile, destination (as many lines as leave `floor` free). Returns the y below."""
    draw_text(pdf, left, y - 9, "TO", BOLD, 8)
    y -= 11
    size, lines = fit_lines(label.receiver_name, BOLD, (16.0, 14.0, 12.0), width, 2)
    for line in lines:
        y -= size + 2
        draw_text(pdf, left, y, line, BOLD, size)
    if label.mobile:
        y -= 15
        draw_text(pdf, left, y, f"Mobile {format_mobile(label.mobile)}", BOLD, 12)
    if label.destination:
        room = max(1, min(4, int((y - 3 - floor) // 13.5)))
        size, lines = fit_lines(label.destination, REGULAR, (11.5, 10.5, 9.5, 8.5), width, room)
        for line in lines:
            y -= size + 2
            draw_text(pdf, left, y, line, REGULAR, size)
    return y - 5


def _collect_box(pdf: canvas.Canvas, label: LabelData, left: float, width: float, y: float) -> float:
    """A boxed "COLLECT ₹1,250.00" across the label, for the courier. Returns the y below it."""
    text = f"COLLECT {format_rupees(label.cod_amount)}" if label.cod_amount is not None else "COLLECT CASH"
    size = min(16.0, (width - 16) / text_width(text, BOLD, 1))
    pdf.setLineWidth(2)
    pdf.rect(left, y - 24, width, 24)
    pdf.setLineWidth(1)
    draw_text(pdf, left + width / 2, y - 12 - 0.357 * size, text, BOLD, size, align="centre")
    return y - 27


def _sender_and_qr(pdf: canvas.Canvas, label: LabelData, left: float, right: float, bottom: float, y: float,
                   options: LabelOptions) -> None:
    """The FROM block beside a QR code of the public tracking page, with the URL under the sender for people
    without a scanner."""
    url = tracking_url(options.public_base_url, label.tracking_id)
    qr_size = min(1.3 * inch, max(y - bottom - 3, 0.9 * inch))
    widget = qr.QrCodeWidget(url, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(qr_size, qr_size, transform=[qr_size / (x1 - x0), 0, 0, qr_size / (y1 - y0), 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, pdf, right - qr_size, bottom)

    column = right - left - qr_size - 6
    draw_text(pdf, left, y - 9, "FROM", BOLD, 8)
    y -= 11
    size, lines = fit_lines(label.sender_name, BOLD, (10.5, 9.0), column, 2)
    for line in lines:
        y -= size + 1
        draw_text(pdf, left, y, line, BOLD, size)
    if label.sender_pincode:
        y -= 12
        draw_text(pdf, left, y, f"PIN {label.sender_pincode}", REGULAR, 10)
    url_lines = wrap(f"Track this parcel: {url}", REGULAR, 7, column)
    if len(url_lines) * 8.5 <= y - 4 - bottom:  # a URL is printed whole or not at all: the QR code has it
        for index, line in enumerate(url_lines):
            draw_text(pdf, left, bottom + 2 + (len(url_lines) - 1 - index) * 8.5, line, REGULAR, 7)
