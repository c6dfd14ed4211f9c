"""UTC helpers: every stored timestamp is timezone-aware UTC."""
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo


def utcnow() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; they were written as UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def isoformat_z(value: datetime | None) -> str | None:
    if value is None:
        return None
    return as_utc(value).isoformat(timespec="seconds").replace("+00:00", "Z")


def parse_iso_z(value: str) -> datetime:
    """The inverse of isoformat_z: "2026-11-26T12:30:00Z" → an aware UTC datetime."""
    return as_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))


def to_local(value: datetime, tz_name: str) -> datetime:
    return as_utc(value).astimezone(ZoneInfo(tz_name))


def local_day_start(day: date, tz_name: str) -> datetime:
    """The UTC instant at which `day` begins in the time zone `tz_name` (e.g. DISPLAY_TIMEZONE)."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(tz_name)).astimezone(UTC)


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: str) -> timedelta:
    """A duration written as a number and a unit: "90s", "15m", "2h", "3d" (decimals allowed: "1.5h"). ValueError
    for anything else, zero or negative."""
    text = value.strip().lower()
    number, unit = text[:-1], text[-1:]
    if unit not in _DURATION_UNITS:
        raise ValueError(f"{value!r} is not a duration: write a number and s, m, h or d (\"2h\")")
    try:
        amount = float(number)
    except ValueError:
        raise ValueError(f"{value!r} is not a duration: write a number and s, m, h or d (\"2h\")") from None
    if not amount > 0 or amount == float("inf"):
        raise ValueError(f"{value!r} is not a positive duration")
    return timedelta(seconds=amount * _DURATION_UNITS[unit])


def parse_durations(value: str) -> tuple[timedelta, ...]:
    """Comma-separated durations ("2h,4h"), at least one."""
    parts = [part for part in (p.strip() for p in value.split(",")) if part]
    if not parts:
        raise ValueError("no duration given")
    return tuple(parse_duration(part) for part in parts)
