"""Where a parcel goes on the map, and when the recipient wants it: the rules every way of booking shares.

- A destination point is a latitude and a longitude given together (both or neither), each a number within its
  range (-90..90, -180..180). Given by the booker it is "exact"; otherwise the booking is placed by the address
  (app.services.planning.points), and the precision says how: "pincode" (the PIN code's centroid), "geocoded" (a
  geocoder's answer, in the job runner), "delivered" (where a courier delivered to the same address).
- A delivery window is two instants, both or neither: `from` before `to`, `to` in the future and at most
  WINDOW_DAYS_AHEAD days ahead. Text is ISO 8601 with a date and a time; one without an offset is read in the
  deployment's display time zone where the caller allows it (the landing form and CSV cells: people type local
  times), refused where it does not (JSON objects, the API).
- An address is known again by `address_key`: the SHA-256 of its normalised text and PIN code, so a cache can find
  it without keeping the address.

Pure: standard library only. Messages are catalogue messages (`_`), said in the reader's language by the caller
(app.domain.parcels.Problems.said_in).
"""
from __future__ import annotations

import hashlib
import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from enum import StrEnum

from app.domain.parcels import Problems

LAT_RANGE = (-90.0, 90.0)
LON_RANGE = (-180.0, 180.0)
WINDOW_DAYS_AHEAD = 14
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_ISO_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}")
_NOT_WORD = re.compile(r"[\W_]+")
_JOINING = re.compile(r"[.'\u2019]")  # "M.G. Road" is "MG Road"; "D'Souza" is "DSouza"


class Precision(StrEnum):
    """How a parcel's destination point was found, best last but one: a courier's delivery beats a geocoder."""
    EXACT = "exact"
    PINCODE = "pincode"
    GEOCODED = "geocoded"
    DELIVERED = "delivered"


@dataclass(frozen=True)
class Point:
    lat: float
    lon: float


@dataclass(frozen=True)
class Window:
    """A delivery window in aware UTC."""
    start: datetime
    end: datetime


def _(message: str) -> str:
    """Marks a message for the catalogues (see app.domain.parcels)."""
    return message


def check_point(lat: object, lon: object, *, names: tuple[str, str] = ("destination_lat", "destination_lon"),
                problems: Problems | None = None) -> tuple[Point | None, Problems]:
    """(the point, or None when neither was given; the problems by field name). `lat` and `lon` as sent: JSON
    numbers, or text from a form or a CSV cell; None or blank text is not given."""
    problems = problems if problems is not None else Problems()
    values: dict[str, float] = {}
    for name, raw, (low, high), not_a_number in (
            (names[0], lat, LAT_RANGE, _("Enter the latitude as a number, such as 9.9312.")),
            (names[1], lon, LON_RANGE, _("Enter the longitude as a number, such as 76.2673."))):
        number = _number(raw)
        if number is _BAD:
            problems.add(name, not_a_number)
        elif number is not None and not low <= number <= high:
            problems.add(name, _("Must be from %(low)s to %(high)s."), low=f"{low:g}", high=f"{high:g}")
        elif number is not None:
            values[name] = number
    given = [name for name, raw in zip(names, (lat, lon), strict=True) if _number(raw) is not None]
    if len(given) == 1:
        missing = names[1] if given[0] == names[0] else names[0]
        problems.add(missing, _("Give both the latitude and the longitude, or neither."))
    if problems or len(values) < 2:
        return None, problems
    return Point(values[names[0]], values[names[1]]), problems


def check_window(start: object, end: object, *, now: datetime, local_zone: tzinfo | None,
                 names: tuple[str, str] = ("window_from", "window_to"),
                 problems: Problems | None = None) -> tuple[Window | None, Problems]:
    """(the window in UTC, or None when neither end was given; the problems by field name). `local_zone`: how
    to read a time without an offset (None: refuse it)."""
    problems = problems if problems is not None else Problems()
    ends: dict[str, datetime] = {}
    given = []
    for name, raw in zip(names, (start, end), strict=True):
        if raw is None or (isinstance(raw, str) and not raw.strip()):
            continue
        given.append(name)
        instant = _instant(raw, local_zone)
        if instant is _BAD:
            problems.add(name, _("Must be a date and time, such as 2026-12-08T10:00+05:30."))
        elif instant is _NO_OFFSET:
            problems.add(name, _("Give the time with its offset from UTC, such as 2026-12-08T10:00+05:30."))
        else:
            ends[name] = instant
    if len(given) == 1:
        missing = names[1] if given[0] == names[0] else names[0]
        problems.add(missing, _("Give both ends of the delivery window, or neither."))
    if problems or len(ends) < 2:
        return None, problems
    window = Window(ends[names[0]], ends[names[1]])
    if window.end <= window.start:
        problems.add(names[1], _("Must be after the start of the window."))
    elif window.end <= now:
        problems.add(names[1], _("Must be in the future."))
    elif window.end > now + timedelta(days=WINDOW_DAYS_AHEAD):
        problems.add(names[1], _("At most %(days)d days ahead."), days=WINDOW_DAYS_AHEAD)
    return (None, problems) if problems else (window, problems)


def normalised_address(destination: str | None) -> str:
    """An address as a cache knows it: compatibility-normalised, case-folded, without dots and apostrophes, every
    other run of punctuation and spaces one space ("12, M.G. Road" and "12 mg road" are the same)."""
    text = _JOINING.sub("", unicodedata.normalize("NFKC", destination or "").casefold())
    return _NOT_WORD.sub(" ", text).strip()


def address_key(destination: str | None, pincode: str | None) -> str:
    """The hex SHA-256 of the normalised address and PIN code: how the geocoder cache finds an address without
    keeping it."""
    return hashlib.sha256(f"{normalised_address(destination)}\x1f{pincode or ''}".encode()).hexdigest()


_BAD = object()
_NO_OFFSET = object()


def _number(value: object):
    """A finite number from JSON (int, float) or text; None when absent or blank; _BAD otherwise."""
    if value is None:
        return None
    if isinstance(value, bool):
        return _BAD
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else _BAD
    if not isinstance(value, str):
        return _BAD
    text = value.strip()
    if not text:
        return None
    return float(text) if _NUMBER.fullmatch(text) else _BAD


def _instant(value: object, local_zone: tzinfo | None):
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str) and _ISO_DATETIME.match(value.strip()):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return _BAD
    else:
        return _BAD
    if parsed.tzinfo is None:
        if local_zone is None:
            return _NO_OFFSET
        parsed = parsed.replace(tzinfo=local_zone)
    return parsed.astimezone(UTC)
