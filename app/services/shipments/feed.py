"""The shipment feed for integrators: shipments in order of their last change, filtered, page by page.

Rules: ordered by (updated_at, id), oldest change first, so a client that keeps the last page's cursor (or its
newest `updated_at`) sees every later change; pages hold at most FEED_PAGE_MAX shipments; the cursor is opaque
to clients (the last row's position: its `updated_at` in microseconds since 1970, a dot, its id) and a damaged one
is a ValidationError, never a 500. Every text of CURSOR_PATTERN is a position (the API publishes the pattern), so a
cursor that matches it is never refused.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select

from app.domain.timeutil import as_utc
from app.errors import ValidationError
from app.extensions import db
from app.models import Shipment
from app.services.shipments.contacts import ContactError, normalise_mobile

FEED_PAGE_MAX = 100
BAD_CURSOR = "Not a cursor from this API: take it from the previous page's `next` link."
# Microseconds since 1970 (up to the year 5138) and a row id below 2**63.
CURSOR_PATTERN = r"^[0-9]{1,17}\.[0-9]{1,18}$"
_CURSOR = re.compile(CURSOR_PATTERN.removeprefix("^").removesuffix("$"))
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True)
class FeedFilter:
    status: str | None = None
    updated_since: datetime | None = None
    mobile: str | None = None  # as typed; normalised here


@dataclass(frozen=True)
class FeedPage:
    shipments: list[Shipment]
    next_cursor: str | None


def shipment_feed(filters: FeedFilter, limit: int, cursor: str | None, default_region: str) -> FeedPage:
    """One page of shipments matching `filters`, after `cursor` (None: from the start)."""
    if not 1 <= limit <= FEED_PAGE_MAX:
        raise ValidationError(fields={"limit": f"Must be from 1 to {FEED_PAGE_MAX}."})
    conditions = []
    if filters.status:
        conditions.append(Shipment.status == filters.status)
    if filters.updated_since is not None:
        conditions.append(Shipment.updated_at >= as_utc(filters.updated_since))
    if filters.mobile is not None:
        try:
            conditions.append(Shipment.mobile == normalise_mobile(filters.mobile, default_region))
        except ContactError as exc:
            raise ValidationError(fields={"mobile": str(exc)}) from exc
    if cursor is not None:
        after_at, after_id = decode_cursor(cursor)
        conditions.append(or_(Shipment.updated_at > after_at,
                              and_(Shipment.updated_at == after_at, Shipment.id > after_id)))
    rows = list(db.session.scalars(
        select(Shipment).where(*conditions).order_by(Shipment.updated_at, Shipment.id).limit(limit + 1)))
    page, more = rows[:limit], len(rows) > limit
    return FeedPage(shipments=page, next_cursor=encode_cursor(page[-1]) if more else None)


def encode_cursor(shipment: Shipment) -> str:
    return f"{(as_utc(shipment.updated_at) - _EPOCH) // _MICROSECOND}.{shipment.id}"


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    if not isinstance(cursor, str) or not _CURSOR.fullmatch(cursor):
        raise ValidationError(fields={"cursor": BAD_CURSOR})
    microseconds, shipment_id = cursor.split(".")
    return _EPOCH + int(microseconds) * _MICROSECOND, int(shipment_id)
