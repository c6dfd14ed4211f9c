"""CSV export of shipments for staff: streamed, so a large export never sits in memory.

Rules: the dashboard's filters apply; contact details are included (staff only), so every export is audited
(`shipments_exported`, with the filters but not the search text); any cell that a spreadsheet would read as a
formula (starting with =, +, -, @, a tab or a carriage return) is prefixed with a quote.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import select

from app.domain.timeutil import isoformat_z
from app.extensions import db
from app.models import Shipment
from app.services.shipments.dashboard import ShipmentFilter, shipment_conditions
from app.services.staff.audit import record_audit

EXPORT_COLUMNS = ("tracking_id", "status", "created_at", "updated_at", "sender_name", "receiver_name", "mobile",
                  "email", "destination")
ROWS_PER_CHUNK = 500
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_formula(value: str) -> str:
    """A cell as text a spreadsheet will not evaluate (OWASP's advice for CSV injection)."""
    return f"'{value}" if value.startswith(_FORMULA_STARTS) else value


def export_csv(filters: ShipmentFilter, default_region: str, *, actor: str) -> Iterator[str]:
    """The matching shipments as CSV text, header first, oldest booking first, in chunks of ROWS_PER_CHUNK rows.

    Audited at once, in the caller's transaction (commit it before streaming): the rows are read only as the
    text is streamed."""
    record_audit("shipments_exported", actor=actor, target_type="shipments", details={
        "search": bool(filters.text), "status": filters.status,
        "booked_from": filters.booked_since.date().isoformat() if filters.booked_since else None,
        "booked_to": (filters.booked_before - timedelta(days=1)).date().isoformat() if filters.booked_before
        else None})
    return _csv_chunks(filters, default_region)


def _csv_chunks(filters: ShipmentFilter, default_region: str) -> Iterator[str]:
    query = (select(*(getattr(Shipment, column) for column in EXPORT_COLUMNS))
             .where(*shipment_conditions(filters, default_region))
             .order_by(Shipment.created_at, Shipment.id)
             .execution_options(yield_per=ROWS_PER_CHUNK))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    for partition in db.session.execute(query).partitions():
        for row in partition:
            writer.writerow([neutralise_formula(_cell(value)) for value in row])
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    if buffer.tell():
        yield buffer.getvalue()


def _cell(value) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return isoformat_z(value)
    return str(value)
