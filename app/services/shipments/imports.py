"""Bookings in bulk from a CSV file: all rows are checked first, and either every row is booked or none is.

Rules: a header row is required naming the columns of REQUIRED_COLUMNS and any of OPTIONAL_COLUMNS (any order,
any letter case, other columns refused; an empty cell is a field not given); UTF-8 with or without a byte-order
mark; comma or semicolon separated; at most MAX_ROWS rows and MAX_BYTES bytes. Each row is validated like a
single booking by the caller; a file with any bad row books nothing and the caller reports every bad row with
its line number.
"""
from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from app.domain.parcels import PARCEL_FIELDS
from app.errors import ValidationError
from app.services.shipments.booking import BookingsRefused, NewShipment, create_shipments
from app.services.staff.audit import record_audit

REQUIRED_COLUMNS = ("sender_name", "receiver_name", "mobile", "destination")
# Where it goes on the map and when (app.domain.points): times without an offset are DISPLAY_TIMEZONE's.
POINT_COLUMNS = ("destination_lat", "destination_lon", "window_from", "window_to")
OPTIONAL_COLUMNS = ("email", "sender_mobile", "sender_email", *PARCEL_FIELDS, *POINT_COLUMNS)
IMPORT_COLUMNS = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
MAX_ROWS = 20_000
MAX_BYTES = 5 * 1024 * 1024


class ImportRejected(ValidationError):
    """The file, or some of its rows, cannot be booked: `rows` lists each bad row's line and field messages."""

    def __init__(self, message: str, rows: list[dict] | None = None, fields: dict[str, str] | None = None) -> None:
        super().__init__(message, fields=fields)
        self.rows = rows or []
        self.extra["rows"] = self.rows


@dataclass(frozen=True)
class ImportRow:
    line: int  # line number in the file, the header being line 1
    values: dict[str, str]


def read_bookings_csv(data: bytes) -> list[ImportRow]:
    """The data rows of an import file, each with its line number; ImportRejected for a file that is not one."""
    if len(data) > MAX_BYTES:
        raise ImportRejected(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.",
                             fields={"file": "Too large."})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ImportRejected("The file is not UTF-8 text.", fields={"file": "Save it as CSV UTF-8."}) from exc
    if "\x00" in text:
        raise ImportRejected("The file is not a text CSV file.", fields={"file": "Not a CSV file."})
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader, None)
        if header is None:
            raise ImportRejected("The file is empty.", fields={"file": "Empty file."})
        columns = [name.strip().lower() for name in header]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        unknown = [c for c in columns if c not in IMPORT_COLUMNS]
        if missing or unknown or len(set(columns)) != len(columns):
            raise ImportRejected(
                f"The header row must name the columns {', '.join(REQUIRED_COLUMNS)}, and may name "
                f"{', '.join(OPTIONAL_COLUMNS)}.",
                fields={"file": "; ".join(filter(None, [missing and f"missing: {', '.join(missing)}",
                                                        unknown and f"unknown: {', '.join(unknown[:5])}"]))
                        or "Repeated column."})
        rows: list[ImportRow] = []
        problems: list[dict] = []
        for cells in reader:
            line = reader.line_num
            if not any(cell.strip() for cell in cells):
                continue  # blank lines (often at the end) are not bookings
            if len(rows) + len(problems) >= MAX_ROWS:
                raise ImportRejected(f"At most {MAX_ROWS} rows at once.", fields={"file": "Too many rows."})
            if len(cells) != len(columns):
                problems.append({"line": line, "fields": {"row": f"Has {len(cells)} cells, not {len(columns)}."}})
                continue
            rows.append(ImportRow(line, dict(zip(columns, cells, strict=True))))
    except csv.Error as exc:
        raise ImportRejected(f"The file is not valid CSV (line {reader.line_num}): {exc}.",
                             fields={"file": "Not valid CSV."}) from exc
    if problems:
        raise ImportRejected(f"{len(problems)} row(s) cannot be read.", rows=problems)
    if not rows:
        raise ImportRejected("The file has no bookings under its header row.", fields={"file": "No rows."})
    return rows


def import_bookings(bookings: list[NewShipment], actor: str, lines: list[int] | None = None) -> list[str]:
    """Book every shipment (each with its Booked event and email) in the caller's transaction, and one audit
    row for the import; returns the new tracking IDs in file order. Written set-based (create_shipments), after
    each booking is checked against the network and priced like a single one: ImportRejected listing every row
    that cannot be booked (`lines`: each booking's line in the file), and nothing is written."""
    try:
        tracking_ids = create_shipments(bookings, actor=actor)
    except BookingsRefused as refused:
        lines = lines or [index + 2 for index in range(len(bookings))]
        rows = [{"line": lines[index], "fields": fields} for index, fields in sorted(refused.refused.items())]
        raise ImportRejected(f"{len(rows)} of {len(bookings)} rows cannot be booked: nothing was imported.",
                             rows=rows) from None
    record_audit("shipments_imported", actor=actor, target_type="shipments", target_id=f"{len(tracking_ids)} shipments",
                 details={"count": len(tracking_ids), "first": tracking_ids[0], "last": tracking_ids[-1]})
    return tracking_ids
