"""Reading a batch of positions from the courier app (POST /courier/locations): JSON only, each point's values
typed and possible, or a 400 naming the point and the value (`points.3.lat`)."""
from __future__ import annotations

import math
from datetime import datetime

from wtforms.validators import ValidationError as FieldError

from app.domain.field import MAX_POINTS_PER_BATCH, position_problems
from app.domain.timeutil import as_utc, utcnow
from app.errors import ValidationError
from app.services.field.locations import Position
from app.web.forms import (
    NOT_A_LIST_OF_OBJECTS,
    NOT_A_NUMBER,
    NOT_A_STRING,
    UNKNOWN_FIELD,
    ObjectListField,
    RequestForm,
    field_label,
)

REQUIRED = ("lat", "lon", "accuracy", "at")
OPTIONAL = ("speed", "heading", "battery")
NUMBERS = ("lat", "lon", "accuracy", *OPTIONAL)
NOT_A_TIME = "Must be an ISO 8601 time with its offset, such as 2026-11-26T12:30:05+05:30."
BATCH_SIZE = f"Send 1 to {MAX_POINTS_PER_BATCH} points."
# A full batch as a browser writes it (JSON.stringify gives up to 17 digits a number) is about 100 KB, above the
# app's usual request size: the view takes this much.
MAX_BATCH_BYTES = 256 * 1024


class PositionBatchForm(RequestForm):
    """`{"points": [{"lat", "lon", "accuracy", "at", "speed"?, "heading"?, "battery"?}]}`: degrees, metres, an
    ISO 8601 time with its offset, metres a second, degrees from north, the battery's charge from 0 to 1."""

    points = ObjectListField()  # with no Optional(): the count is always checked
    # Its only text is each point's time, which must read as an ISO 8601 time or is refused; any other name is
    # refused as unknown (shown through field_label). Checking every string first cost a batch of 50 points 1 ms.
    checks_json_text = False

    def validate_points(self, field) -> None:
        if not all(isinstance(point, dict) for point in field.data):
            raise FieldError(NOT_A_LIST_OF_OBJECTS)
        if not 1 <= len(field.data) <= MAX_POINTS_PER_BATCH:
            raise FieldError(BATCH_SIZE)

    def to_positions(self, now: datetime | None = None) -> list[Position]:
        """The points as Positions; ValidationError naming every bad value of every point otherwise."""
        now = now or utcnow()
        problems: dict[str, str] = {}
        positions = []
        for index, point in enumerate(self.points.data):
            read = _read_point(point, now)
            if isinstance(read, Position):
                positions.append(read)
            else:
                problems.update((f"points.{index}.{name}", message) for name, message in read.items())
        if problems:
            raise ValidationError(fields=problems)
        return positions


_NAMES = frozenset((*REQUIRED, *OPTIONAL))


def _read_point(point: dict, now: datetime) -> Position | dict[str, str]:
    """One point as sent, read once: its Position, or what is wrong with it (missing, unknown or mistyped values
    first, then impossible ones)."""
    problems = {} if point.keys() <= _NAMES else \
        {field_label(name): UNKNOWN_FIELD for name in point if name not in _NAMES}
    problems.update((name, "Required.") for name in REQUIRED if point.get(name) is None)
    problems.update((name, NOT_A_NUMBER) for name in NUMBERS
                    if point.get(name) is not None and not _is_number(point[name]))
    at = _time(point.get("at"))
    if at is None and point.get("at") is not None:
        problems["at"] = NOT_A_STRING if not isinstance(point["at"], str) else NOT_A_TIME
    if problems:
        return problems
    values = {name: float(point[name]) for name in ("lat", "lon", "accuracy")}
    values.update((name, float(point[name]) if point.get(name) is not None else None) for name in OPTIONAL)
    return position_problems(at=at, now=now, **values) or Position(at=at, **values)


def _is_number(value: object) -> bool:
    """A finite JSON number that fits a float (true and false are not numbers, NaN and Infinity are not JSON)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    try:
        return math.isfinite(float(value))
    except OverflowError:
        return False


def _time(value: object) -> datetime | None:
    """An aware UTC datetime from ISO 8601 text with an offset (or Z); None for anything else."""
    if not isinstance(value, str) or not (value.isascii() and value.isprintable()):
        return None  # fromisoformat stops reading at a NUL: "…+05:30\x00" would pass
    try:
        parsed = datetime.fromisoformat(value)
        return as_utc(parsed) if parsed.tzinfo is not None else None
    except (ValueError, OverflowError):  # not a time; or a time at the calendar's edge that UTC cannot hold
        return None
