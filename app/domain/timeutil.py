"""UTC helpers: every stored timestamp is timezone-aware UTC."""
from datetime import UTC, date, datetime, time
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
