"""Reading a batch of positions from the courier app (POST /courier/locations): JSON only, each point's values
typed and possible, or a 400 naming the point and the value (`points.3.lat`).

Read with plain Python, not a WTForms form: a courier's phone sends a batch every few seconds all shift, and a
form built for each (its fields, its meta, its translations) cost more CPU than reading the 50 points. The
answers are a RequestForm's: the same messages, under the same names.
"""
from __future__ import annotations

import math
from datetime import datetime

from app.domain.field import MAX_POINTS_PER_BATCH, position_problems
from app.domain.timeutil import as_utc, utcnow
from app.errors import ValidationError
from app.services.field.locations import Position
from app.web.forms import (
    NOT_A_LIST_OF_OBJECTS,
    NOT_A_NUMBER,
    NOT_A_STRING,
    UNKNOWN_FIELD,
    field_label,
    json_object_as_sent,
)

REQUIRED = ("lat", "lon", "accuracy", "at")
OPTIONAL = ("speed", "heading", "battery")
NUMBERS = ("lat", "lon", "accuracy", *OPTIONAL)
_REQUIRED_NUMBERS = frozenset(REQUIRED) - {"at"}
_NAMES = frozenset((*REQUIRED, *OPTIONAL))
NOT_A_TIME = "Must be an ISO 8601 time with its offset, such as 2026-11-26T12:30:05+05:30."
BATCH_SIZE = f"Send 1 to {MAX_POINTS_PER_BATCH} points."
# A full batch as a browser writes it (JSON.stringify gives up to 17 digits a number) is about 100 KB, above the
# app's usual request size: the view takes this much.
MAX_BATCH_BYTES = 256 * 1024


def read_position_batch(now: datetime | None = None) -> list[Position]:
    """`{"points": [{"lat", "lon", "accuracy", "at", "speed"?, "heading"?, "battery"?}]}`: degrees, metres, an
    ISO 8601 time with its offset, metres a second, degrees from north, the battery's charge from 0 to 1; the
    points as Positions. ValidationError (400): a body that is not a JSON object; any name but `points` (unknown);
    `points` not a list of 1 to MAX_POINTS_PER_BATCH objects; then every bad value of every point.

    The body's only text is each point's time, which must read as an ISO 8601 time or is refused, and any other
    name is refused as unknown (shown through field_label): so the general check of every string for bad text
    (app.web.forms.json_object_body) is left out. It cost a batch of 50 points 1 ms."""
    body = json_object_as_sent()
    fields = {field_label(name): UNKNOWN_FIELD for name in body if name != "points"}
    points = body.get("points")
    if points is not None and not (isinstance(points, list) and all(isinstance(point, dict) for point in points)):
        fields["points"] = NOT_A_LIST_OF_OBJECTS
    if fields:
        raise ValidationError(fields=fields)
    if not points or len(points) > MAX_POINTS_PER_BATCH:
        raise ValidationError(fields={"points": BATCH_SIZE})
    now = now or utcnow()
    problems: dict[str, str] = {}
    positions = []
    for index, point in enumerate(points):
        read = _read_point(point, now)
        if isinstance(read, Position):
            positions.append(read)
        else:
            problems.update((f"points.{index}.{name}", message) for name, message in read.items())
    if problems:
        raise ValidationError(fields=problems)
    return positions


def _read_point(point: dict, now: datetime) -> Position | dict[str, str]:
    """One point as sent, read once: its Position, or what is wrong with it (missing, unknown or mistyped values
    first, then impossible ones)."""
    problems = {} if point.keys() <= _NAMES else \
        {field_label(name): UNKNOWN_FIELD for name in point if name not in _NAMES}
    values: dict[str, float | None] = {}
    for name in NUMBERS:
        value = point.get(name)
        if value is None:
            if name in _REQUIRED_NUMBERS:
                problems[name] = "Required."
            else:
                values[name] = None
        elif (number := _number(value)) is not None:
            values[name] = number
        else:
            problems[name] = NOT_A_NUMBER
    sent_at = point.get("at")
    at = _time(sent_at)
    if at is None:
        problems["at"] = "Required." if sent_at is None else NOT_A_STRING if not isinstance(sent_at, str) \
            else NOT_A_TIME
    if problems:
        return problems
    return position_problems(at=at, now=now, **values) or Position(at=at, **values)


def _number(value: object) -> float | None:
    """A finite JSON number that fits a float, as a float; None for anything else (true and false are not numbers,
    NaN and Infinity are not JSON)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _time(value: object) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text with an offset (or Z); None for anything else."""
    if not isinstance(value, str) or not (value.isascii() and value.isprintable()):
        return None  # fromisoformat stops reading at a NUL: "…+05:30\x00" would pass
    try:
        parsed = datetime.fromisoformat(value)
        return as_utc(parsed) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):  # not a time; or a time at the calendar's edge that UTC cannot hold
        return None
