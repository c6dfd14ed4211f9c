"""Printable shipping labels: one page per shipment, 4×6 in (thermal printers) or A6.

Rules: a label carries the tracking ID in large type, a Code 128 barcode of it, a QR code of the public tracking
URL, the receiver's name and destination, the sender's name and the booking date. Never an email address or a
mobile number. Names and addresses print as typed, Hindi included (label_text.py); every other word is English.
At most MAX_LABELS shipments per document; IDs are printed in the order given, each once.
"""
from __future__ import annotations

import io
from dataclasses import dataclass

from reportlab.graphics import renderPDF
from reportlab.graphics.barcode import code128, qr
from reportlab.graphics.shapes import Drawing
from reportlab.lib.pagesizes import A6
from reportlab.lib.units import inch, mm
from reportlab.pdfgen import canvas
from sqlalchemy import select

from app.domain.links import tracking_url
from app.domain.tracking_ids import normalise_tracking_id
from app.errors import ValidationError
from app.extensions import db
from app.i18n.locales import format_local_date
from app.models import Shipment
from app.services.shipments.label_text import BOLD, REGULAR, draw_text, fit_lines, register_fonts, wrap

MAX_LABELS = 500
LABEL_SIZES: dict[str, tuple[float, float]] = {"4x6": (4 * inch, 6 * inch), "a6": A6}
DEFAULT_SIZE = "4x6"
# A label's own words and its date are in English whatever the booking's or the request's language: it is read
# by hub staff and couriers anywhere in the country. Names and addresses print as they were typed.
LABEL_LANGUAGE = "en"
_MARGIN = 5 * mm


@dataclass(frozen=True)
class LabelOptions:
    size: str
    public_base_url: str
    timezone: str


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


def render_labels(shipments: list[Shipment], options: LabelOptions) -> bytes:
    """A PDF with one label page per shipment."""
    register_fonts()
    width, height = LABEL_SIZES[options.size]
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=(width, height), pageCompression=1)
    pdf.setTitle("Waybill labels" if len(shipments) > 1 else f"Waybill label {shipments[0].tracking_id}")
    pdf.setCreator("Waybill")
    for shipment in shipments:
        _draw_label(pdf, shipment, width, height, options)
        pdf.showPage()
    pdf.save()
    return buffer.getvalue()


def _draw_label(pdf: canvas.Canvas, shipment: Shipment, width: float, height: float, options: LabelOptions) -> None:
    left, right, top = _MARGIN, width - _MARGIN, height - _MARGIN
    usable = right - left

    draw_text(pdf, left, top - 11, "WAYBILL", BOLD, 11)
    booked = format_local_date(shipment.created_at, options.timezone, language=LABEL_LANGUAGE)
    draw_text(pdf, right, top - 10, f"Booked {booked}", REGULAR, 9, align="right")
    pdf.setLineWidth(1)
    pdf.line(left, top - 16, right, top - 16)

    # The tracking ID as large as fits the width.
    font_size = min(42.0, usable / pdf.stringWidth(shipment.tracking_id, "Courier-Bold", 1))
    y = top - 18 - font_size
    pdf.setFont("Courier-Bold", font_size)
    pdf.drawCentredString(width / 2, y, shipment.tracking_id)

    # Code 128 of the ID, quiet zones included, centred.
    bar_height = 0.85 * inch
    barcode = code128.Code128(shipment.tracking_id, barHeight=bar_height, barWidth=1.0, quiet=True)
    bar_width = min(usable / barcode.width, 2.2)
    barcode = code128.Code128(shipment.tracking_id, barHeight=bar_height, barWidth=bar_width, quiet=True)
    y -= bar_height + 10
    barcode.drawOn(pdf, (width - barcode.width) / 2, y)

    y -= 8
    pdf.line(left, y, right, y)
    y = _block(pdf, "TO", shipment.receiver_name, shipment.destination, left, y - 4, usable, name_size=15)
    pdf.line(left, y, right, y)
    y = _block(pdf, "FROM", shipment.sender_name, None, left, y - 4, usable, name_size=11)

    # QR of the public tracking page, bottom right, with the URL beside it for people without a scanner.
    url = tracking_url(options.public_base_url, shipment.tracking_id)
    qr_size = min(1.35 * inch, max(y - _MARGIN - 4, 0.9 * inch))
    widget = qr.QrCodeWidget(url, barLevel="M")
    x0, y0, x1, y1 = widget.getBounds()
    drawing = Drawing(qr_size, qr_size, transform=[qr_size / (x1 - x0), 0, 0, qr_size / (y1 - y0), 0, 0])
    drawing.add(widget)
    renderPDF.draw(drawing, pdf, right - qr_size, _MARGIN)
    lines = wrap(f"Track this parcel: {url}", REGULAR, 8, usable - qr_size - 6)
    for index, line in enumerate(lines[:4]):
        draw_text(pdf, left, _MARGIN + qr_size - 10 - index * 10, line, REGULAR, 8)


def _block(pdf: canvas.Canvas, heading: str, name: str, address: str | None, left: float, y: float, width: float,
           name_size: float) -> float:
    """A TO/FROM block; returns the y below it."""
    draw_text(pdf, left, y - 8, heading, BOLD, 8)
    y -= 10 + name_size
    for line in fit_lines(name, BOLD, (name_size,), width, 2)[1]:
        draw_text(pdf, left, y, line, BOLD, name_size)
        y -= name_size + 2
    if address:
        for line in fit_lines(address, REGULAR, (11.0,), width, 4)[1]:
            draw_text(pdf, left, y, line, REGULAR, 11)
            y -= 13
    return y - 2
