"""A run sheet on paper, for couriers without a phone: one A4 landscape table of the open stops in order, with the
address to go to, the PIN code, the mobile to call, the pieces, the cash to collect, and a blank column for the
recipient's signature.

Rules: the renderer prints what a RunSheetView holds and reads nothing else. Names and addresses print as typed,
Hindi included, in the labels' embedded font (app.services.shipments.label_text); tracking IDs in a fixed-width
font, as on labels. A pickup's row names the sender and their address instead of the receiver. Its own words are
English, like the labels and receipts. Printing is audited (`runsheet_printed`): it carries names, addresses and
mobiles.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from decimal import Decimal

from reportlab.lib.pagesizes import A4, landscape
from reportlab.lib.units import mm
from reportlab.pdfgen import canvas

from app.domain.pricing import money_text
from app.domain.timeutil import to_local, utcnow
from app.services.field.runsheets import RunSheetView, Stop, runsheet_view
from app.services.shipments.label_text import BOLD, REGULAR, draw_text, register_fonts, wrap
from app.services.staff.audit import record_audit

_MARGIN = 10 * mm
_ID_FONT = "Courier-Bold"  # fixed width: every character of an ID reads apart, as on labels
_ROW_MIN = 16 * mm  # room for a signature
_LINE = 10  # points between lines of a cell
_VEHICLES = {"two_wheeler": "two-wheeler", "three_wheeler": "three-wheeler", "van": "van"}


@dataclass(frozen=True)
class _Column:
    heading: str
    width: float  # in points; the signature column takes what is left


_COLUMNS = (_Column("#", 9 * mm), _Column("Tracking ID", 27 * mm), _Column("Deliver to / pick up from", 88 * mm),
            _Column("PIN", 15 * mm), _Column("Mobile", 31 * mm), _Column("Pcs", 10 * mm),
            _Column("Collect", 26 * mm), _Column("Status", 24 * mm))


def print_runsheet(runsheet_id: int, *, actor: str, timezone: str) -> tuple[RunSheetView, bytes]:
    """A run sheet as a PDF, audited (`runsheet_printed`) in the caller's transaction; NotFound."""
    sheet = runsheet_view(runsheet_id)
    pdf = render_runsheet(sheet, timezone)
    record_audit("runsheet_printed", actor=actor, target_type="runsheet", target_id=sheet.id,
                 details={"courier": sheet.courier, "date": sheet.date.isoformat(),
                          "stops": len(sheet.open_stops())})
    return sheet, pdf


def render_runsheet(sheet: RunSheetView, timezone: str) -> bytes:
    """The run sheet's open stops as a table on as many A4 landscape pages as it takes."""
    register_fonts()
    buffer = io.BytesIO()
    pdf = canvas.Canvas(buffer, pagesize=landscape(A4), pageCompression=1)
    pdf.setTitle(f"Waybill run sheet {sheet.id}")
    pdf.setCreator("Waybill")
    page = _Page(pdf, sheet, timezone)
    stops = sheet.open_stops()
    y = page.start()
    if not stops:
        draw_text(pdf, _MARGIN, y - 14, "No open stops.", REGULAR, 11)
    for stop in stops:
        cells = _cells(stop)
        height = max(_ROW_MIN, max(len(lines) for lines in cells) * _LINE + 8)
        if y - height < _MARGIN + 20:
            y = page.next()
        _row(pdf, stop, cells, y, height, page.right)
        y -= height
    if y - 14 < _MARGIN + 10:
        y = page.next()
    _totals(pdf, stops, y - 14)
    page.finish()
    pdf.save()
    return buffer.getvalue()


class _Page:
    """Page furniture: the heading with the courier and day, the column headings, the page number."""

    def __init__(self, pdf: canvas.Canvas, sheet: RunSheetView, timezone: str) -> None:
        self.pdf, self.sheet, self.number = pdf, sheet, 1
        self.width, self.height = landscape(A4)
        self.right = self.width - _MARGIN
        printed = to_local(utcnow(), timezone)
        self.printed = f"Printed {printed:%d %b %Y, %H:%M} {printed.tzname()}"

    def start(self) -> float:
        pdf, sheet, top = self.pdf, self.sheet, self.height - _MARGIN
        draw_text(pdf, _MARGIN, top - 14, "WAYBILL", BOLD, 14)
        draw_text(pdf, _MARGIN + 30 * mm, top - 14, f"Run sheet {sheet.id} · {sheet.date:%d %b %Y}", BOLD, 14)
        draw_text(pdf, self.right, top - 13, self.printed, REGULAR, 9, align="right")
        vehicle = _VEHICLES.get(sheet.vehicle or "", sheet.vehicle or "")
        courier = f"Courier: {sheet.courier_name} ({sheet.courier})" if sheet.courier_name else \
            f"Courier: {sheet.courier}"
        draw_text(pdf, _MARGIN, top - 30, f"{courier}{' · ' + vehicle if vehicle else ''}", REGULAR, 11)
        y = top - 40
        pdf.setLineWidth(1)
        pdf.line(_MARGIN, y, self.right, y)
        x = _MARGIN
        for column in _COLUMNS:
            draw_text(pdf, x + 2, y - 11, column.heading, BOLD, 8)
            x += column.width
        draw_text(pdf, x + 2, y - 11, "Received by: name and signature", BOLD, 8)
        y -= 16
        pdf.line(_MARGIN, y, self.right, y)
        return y

    def next(self) -> float:
        self.finish()
        self.number += 1
        return self.start()

    def finish(self) -> None:
        draw_text(self.pdf, self.right, _MARGIN - 2, f"Page {self.number}", REGULAR, 8, align="right")
        self.pdf.showPage()


def _cells(stop: Stop) -> list[list[str]]:
    """Each column's lines for one stop (the tracking ID's column holds the kind of stop under it)."""
    widths = [column.width - 4 for column in _COLUMNS]
    if stop.kind == "pickup":
        name, address = f"Pick up: {stop.sender_name}", stop.sender_address or ""
        pincode, mobile, collect = stop.sender_pincode, stop.sender_mobile, ""
    else:
        name, address, pincode, mobile = stop.receiver_name, stop.destination, stop.destination_pincode, stop.mobile
        collect = f"INR {money_text(stop.cod_amount)}" if stop.cod_amount is not None else "Prepaid"
    place = wrap(name, BOLD, 9, widths[2])[:2] + wrap(address, REGULAR, 8, widths[2])[:4]
    return [[str(stop.sequence)], [stop.tracking_id, stop.kind], place, [pincode or ""], [mobile or ""],
            [str(stop.pieces)], [collect], wrap(stop.status, REGULAR, 8, widths[7])]


def _row(pdf: canvas.Canvas, stop: Stop, cells: list[list[str]], y: float, height: float, right: float) -> None:
    x = _MARGIN
    for index, (column, lines) in enumerate(zip(_COLUMNS, cells, strict=True)):
        for number, line in enumerate(lines):
            baseline = y - 11 - number * _LINE
            if index == 1 and number == 0:
                pdf.setFont(_ID_FONT, 10)
                pdf.drawString(x + 2, baseline, line)
            else:
                draw_text(pdf, x + 2, baseline, line, BOLD if index == 2 and number == 0 else REGULAR,
                          9 if index == 2 and number == 0 else 8)
        x += column.width
    pdf.setLineWidth(0.5)
    pdf.line(_MARGIN, y - height, right, y - height)
    pdf.line(x, y, x, y - height)  # the signature's box starts here


def _totals(pdf: canvas.Canvas, stops: list[Stop], y: float) -> None:
    cod = sum((stop.cod_amount for stop in stops if stop.cod_amount is not None and stop.kind == "delivery"),
              Decimal("0"))
    pieces = sum(stop.pieces for stop in stops)
    stops_text = "1 stop" if len(stops) == 1 else f"{len(stops)} stops"
    draw_text(pdf, _MARGIN, y, f"{stops_text} · {pieces} pieces · cash to collect INR {money_text(cod)}", BOLD, 10)
