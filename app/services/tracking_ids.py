"""Tracking IDs: the first 8 hex characters of a uuid4, uppercase."""
from __future__ import annotations

import re
import uuid

TRACKING_ID_LENGTH = 8
_TRACKING_ID_RE = re.compile(r"^[0-9A-F]{8}$")


def new_tracking_id() -> str:
    return uuid.uuid4().hex[:TRACKING_ID_LENGTH].upper()


def normalise_tracking_id(value: str) -> str | None:
    """The canonical form of a tracking ID typed by a person (any case, spaces around), or None."""
    candidate = value.strip().upper()
    return candidate if _TRACKING_ID_RE.match(candidate) else None
