"""Serviceability: the PIN codes the network delivers to, and where it offers cash on delivery and express.

Rules:
- A PIN code unknown to India's directory (app.services.shipments.pincodes) is never served.
- An empty list means every PIN code of the directory is served, with cash on delivery and express: a new
  install books at once. Otherwise a PIN code is served only when it is on the list, with the options the list
  gives it.
- A booking to a PIN code not served, with cash on delivery (`payment` "cod") where it is not offered, or
  express (`service` "express") where it is not offered, is refused with 422, `fields` naming each field.
- The list is replaced whole, from a CSV file `pincode,cod,express`: a header row naming those columns (any order
  and letter case); UTF-8 with or without a byte-order mark; comma or semicolon separated; booleans as
  true/false, yes/no, 1/0 or y/n in any case; each PIN code once and in the directory. Any bad row refuses the
  whole file (400, every bad row listed with its line number) and nothing is written; a file of the header row
  alone empties the list (everything served again). One audit row per replacement, with counts only.
"""
from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from flask_babel import gettext as _
from sqlalchemy import case, delete, func, select, text

from app.domain.pincodes import normalise_pincode
from app.errors import Unprocessable, ValidationError
from app.extensions import db
from app.models import ServedPincode
from app.services.shipments.pincodes import pincode_info
from app.services.staff.audit import record_audit

COLUMNS = ("pincode", "cod", "express")
PAYMENT_COD = "cod"
SERVICE_EXPRESS = "express"
# India has about 19,600 PIN codes, and a file lists each at most once.
MAX_ROWS = 30_000
MAX_BYTES = 1024 * 1024
TRUE_WORDS = frozenset({"true", "yes", "1", "y"})
FALSE_WORDS = frozenset({"false", "no", "0", "n"})
_INSERT_CHUNK = 5_000


@dataclass(frozen=True)
class Serviceability:
    """What the network offers at one PIN code; city and state are the directory's (None when it has no such
    PIN code, or lacks them)."""

    pincode: str
    served: bool
    cod: bool
    express: bool
    city: str | None
    state: str | None
    in_directory: bool = True

    def to_dict(self) -> dict:
        """The public shape: `in_directory` is said by `served` and the null city and state."""
        return {"pincode": self.pincode, "served": self.served, "cod": self.cod, "express": self.express,
                "city": self.city, "state": self.state}


@dataclass(frozen=True)
class ServiceabilityCounts:
    """How many PIN codes the list serves, and how many of them with cash on delivery and with express. All
    zero for an empty list, which serves everything (`everything_served`)."""

    served: int
    cod: int
    express: int

    @property
    def everything_served(self) -> bool:
        return self.served == 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ServiceabilityRow:
    line: int  # line number in the file, the header being line 1
    values: dict[str, str]


class ServiceabilityRejected(ValidationError):
    """The file, or some of its rows, cannot be used: `rows` lists each bad row's line and field messages."""

    def __init__(self, message: str, rows: list[dict] | None = None, fields: dict[str, str] | None = None) -> None:
        super().__init__(message, fields=fields)
        self.rows = rows or []
        self.extra["rows"] = self.rows


def malformed_pincode_message() -> str:
    return _("A PIN code is 6 digits, the first not 0 (such as 682016).")


def check(pincode: object) -> Serviceability:
    """What the network offers at `pincode` (any well-formed spelling: "682016", "682 016").

    ValidationError (400, field `pincode`) when it is not a well-formed PIN code; a well-formed one unknown to
    the directory is simply not served.
    """
    normalised = normalise_pincode(pincode)
    if normalised is None:
        raise ValidationError(malformed_pincode_message(), fields={"pincode": malformed_pincode_message()})
    info = pincode_info(normalised)
    if info is None:
        return Serviceability(normalised, served=False, cod=False, express=False, city=None, state=None,
                              in_directory=False)
    row = db.session.execute(select(ServedPincode.cod, ServedPincode.express)
                             .where(ServedPincode.pincode == normalised)).one_or_none()
    if row is not None:
        served, cod, express = True, row.cod, row.express
    else:
        served = cod = express = list_is_empty()
    return Serviceability(normalised, served=served, cod=cod, express=express, city=info.city, state=info.state)


def check_booking(destination_pincode: object, payment: str | None = None,
                  service: str | None = None) -> Serviceability:
    """Refuse a booking the network cannot deliver as asked; returns what it offers there otherwise.

    Rules: a missing or malformed PIN code is a ValidationError (400, `destination_pincode`). Unprocessable (422)
    when the PIN code is not served (`destination_pincode`), or when it is served but `payment` is "cod" and it
    has no cash on delivery (`payment`), or `service` is "express" and it has no express (`service`); both
    options are reported at once. Other payments and services are not this check's to judge.
    """
    pincode = normalise_pincode(destination_pincode)
    if pincode is None:
        raise ValidationError(fields={"destination_pincode": malformed_pincode_message()})
    offer = check(pincode)
    if not offer.served:
        reason = (_("We do not deliver to PIN code %(pincode)s yet.", pincode=pincode) if offer.in_directory
                  else _("%(pincode)s is not a PIN code in India Post's directory.", pincode=pincode))
        raise Unprocessable(reason, fields={"destination_pincode": reason})
    fields = {}
    if _word(payment) == PAYMENT_COD and not offer.cod:
        fields["payment"] = _("Cash on delivery is not available at PIN code %(pincode)s.", pincode=pincode)
    if _word(service) == SERVICE_EXPRESS and not offer.express:
        fields["service"] = _("Express delivery is not available at PIN code %(pincode)s.", pincode=pincode)
    if fields:
        raise Unprocessable(" ".join(fields.values()), fields=fields)
    return offer


def serviceability_counts() -> ServiceabilityCounts:
    """The list's size, and how many of its PIN codes offer cash on delivery and express (one query)."""
    served, cod, express = db.session.execute(select(
        func.count(),
        func.coalesce(func.sum(case((ServedPincode.cod, 1), else_=0)), 0),
        func.coalesce(func.sum(case((ServedPincode.express, 1), else_=0)), 0),
    ).select_from(ServedPincode)).one()
    return ServiceabilityCounts(served=int(served), cod=int(cod), express=int(express))


def served_pincodes() -> list[ServedPincode]:
    """The whole list, by PIN code (its CSV download, which an admin edits and uploads again)."""
    return list(db.session.scalars(select(ServedPincode).order_by(ServedPincode.pincode)))


def read_serviceability_csv(data: bytes) -> list[ServiceabilityRow]:
    """The data rows of an uploaded list, each with its line number; ServiceabilityRejected for a file that is
    not one (not UTF-8 text, not CSV, no or a wrong header row, too large, rows of the wrong width). An empty
    list of rows is a file of the header row alone."""
    if len(data) > MAX_BYTES:
        raise ServiceabilityRejected(_("The file is larger than %(size)s MB.", size=MAX_BYTES // (1024 * 1024)),
                                     fields={"file": _("Too large.")})
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ServiceabilityRejected(_("The file is not UTF-8 text."),
                                     fields={"file": _("Save it as CSV UTF-8.")}) from exc
    if "\x00" in text:
        raise ServiceabilityRejected(_("The file is not a text CSV file."), fields={"file": _("Not a CSV file.")})
    first_line = text.split("\n", 1)[0]
    delimiter = ";" if first_line.count(";") > first_line.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        columns = [name.strip().lower() for name in next(reader, None) or []]
        if sorted(columns) != sorted(COLUMNS):
            raise ServiceabilityRejected(
                _("The first row must name the columns %(columns)s.", columns=", ".join(COLUMNS)),
                fields={"file": _("The header row is missing or wrong.")})
        rows: list[ServiceabilityRow] = []
        problems: list[dict] = []
        for cells in reader:
            if not any(cell.strip() for cell in cells):
                continue  # blank lines (often at the end) list nothing
            if len(rows) + len(problems) >= MAX_ROWS:
                raise ServiceabilityRejected(_("At most %(count)s rows at once.", count=MAX_ROWS),
                                             fields={"file": _("Too many rows.")})
            if len(cells) != len(columns):
                problems.append({"line": reader.line_num, "fields": {
                    "row": _("Has %(cells)s cells, not %(columns)s.", cells=len(cells), columns=len(columns))}})
                continue
            rows.append(ServiceabilityRow(reader.line_num, dict(zip(columns, cells, strict=True))))
    except csv.Error as exc:
        raise ServiceabilityRejected(_("The file is not valid CSV (line %(line)s).", line=reader.line_num),
                                     fields={"file": _("Not valid CSV.")}) from exc
    if problems:
        raise _rejected(problems, len(rows) + len(problems))
    return rows


def replace_all(rows: Sequence[ServiceabilityRow], actor: str) -> ServiceabilityCounts:
    """Replace the whole list with `rows`, in the caller's transaction, and audit it; returns the new counts.

    Every row is checked first (a well-formed PIN code of the directory, listed once; `cod` and `express` as
    booleans): ServiceabilityRejected listing every bad row, and nothing written. No rows empties the list.
    """
    problems, entries, first_line = [], [], {}
    for row in rows:
        fields, entry = _checked(row, first_line)
        if fields:
            problems.append({"line": row.line, "fields": fields})
        else:
            entries.append(entry)
    if problems:
        raise _rejected(problems, len(rows))
    if db.session.get_bind().dialect.name == "postgresql":
        # Two uploads at once would each delete the old list and then collide on the other's new rows; plain
        # reads (check) go on meanwhile. SQLite lets one writer in at a time anyway.
        db.session.execute(text(f"LOCK TABLE {ServedPincode.__tablename__} IN EXCLUSIVE MODE"))
    # The list this one replaces, as deleted: under the lock (or SQLite's write lock), so it is the last one.
    old = db.session.execute(delete(ServedPincode).returning(ServedPincode.cod, ServedPincode.express)).all()
    before = ServiceabilityCounts(served=len(old), cod=sum(row.cod for row in old),
                                  express=sum(row.express for row in old))
    for start in range(0, len(entries), _INSERT_CHUNK):
        db.session.execute(ServedPincode.__table__.insert(), entries[start:start + _INSERT_CHUNK])
    after = ServiceabilityCounts(served=len(entries), cod=sum(e["cod"] for e in entries),
                                 express=sum(e["express"] for e in entries))
    record_audit("serviceability_replaced", actor=actor, target_type="serviceability",
                 target_id=f"{after.served} PIN codes", details={"before": before.to_dict(), "after": after.to_dict()})
    return after


def _checked(row: ServiceabilityRow, first_line: dict[str, int]) -> tuple[dict[str, str], dict]:
    """A row's problems by column, or none and the row to insert. `first_line` remembers where each PIN code
    was first listed."""
    fields: dict[str, str] = {}
    raw = row.values.get("pincode", "")
    pincode = normalise_pincode(raw)
    if pincode is None:
        fields["pincode"] = malformed_pincode_message() if raw.strip() else _("Enter a PIN code.")
    elif pincode in first_line:
        fields["pincode"] = _("Listed already, on line %(line)s.", line=first_line[pincode])
    elif pincode_info(pincode) is None:
        fields["pincode"] = _("%(pincode)s is not a PIN code in India Post's directory.", pincode=pincode)
    else:
        first_line[pincode] = row.line
    flags = {}
    for column in ("cod", "express"):
        word = _word(row.values.get(column))
        if word in TRUE_WORDS or word in FALSE_WORDS:
            flags[column] = word in TRUE_WORDS
        else:
            fields[column] = _("Write yes or no (also true/false, 1/0, y/n).")
    return fields, {"pincode": pincode, **flags}


def _rejected(problems: list[dict], total: int) -> ServiceabilityRejected:
    summary = _("%(bad)s of %(total)s rows are not valid: nothing was changed.", bad=len(problems), total=total)
    return ServiceabilityRejected(summary, rows=problems, fields={"file": summary})


def list_is_empty() -> bool:
    """No PIN code listed: everything is served (a new install works at once)."""
    return db.session.scalar(select(ServedPincode.pincode).limit(1)) is None


def _word(value: object) -> str:
    return value.strip().lower() if isinstance(value, str) else ""
