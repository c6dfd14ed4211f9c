"""Tracking IDs: the first 8 hex characters of a uuid4, uppercase."""
from __future__ import annotations

import re
import uuid

TRACKING_ID_LENGTH = 8
_TRACKING_ID_RE = re.compile(r"^[0-9A-F]{8}$")
_TRACKING_ID_PREFIX_RE = re.compile(r"^[0-9A-F]{3,8}$")
# People copy IDs from labels and messages as "3EE0 AFAD" or "3EE0-AFAD", and type the letter O for a zero
# (an ID is hex, so O can only mean 0).
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212]+")


def new_tracking_id() -> str:
    return uuid.uuid4().hex[:TRACKING_ID_LENGTH].upper()


def normalise_tracking_id(value: str) -> str | None:
    """The canonical form of a tracking ID typed by a person, or None.

    Any letter case; every whitespace and hyphen (anywhere, not only around it) ignored; the letter O read as 0.
    """
    candidate = _canonical_characters(value)
    return candidate if _TRACKING_ID_RE.match(candidate) else None


def normalise_tracking_id_prefix(value: str) -> str | None:
    """The canonical form of the start of a tracking ID (three to eight characters) typed by a person, or None.

    Read as `normalise_tracking_id` reads a whole ID, so a search box finds "94a6-f8" or "94A6 F8F8".
    """
    candidate = _canonical_characters(value)
    return candidate if _TRACKING_ID_PREFIX_RE.match(candidate) else None


def _canonical_characters(value: str) -> str:
    return _SEPARATORS.sub("", value).upper().replace("O", "0")
