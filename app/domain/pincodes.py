"""India's PIN codes as text: what a well-formed one looks like, finding one in an address, and the directory's
record of one (PinInfo). Pure: the directory itself is read by app.services.shipments.pincodes.

A PIN code is six digits, the first not 0 (it names one of India's postal zones); people also write it as two
groups of three ("682 016").
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

PINCODE_LENGTH = 6
_WELL_FORMED = re.compile(r"[1-9][0-9]{2} ?[0-9]{3}", re.ASCII)
# A six-digit group in free text, also as "682 016", not part of a longer run of digits (a phone number).
_IN_TEXT = re.compile(r"(?<![0-9])[0-9]{3} ?[0-9]{3}(?![0-9])", re.ASCII)
# Words a place name keeps in lower case ("Andaman and Nicobar Islands"), unless it starts with them.
_MINOR_WORDS = frozenset({"and", "of", "the"})
_LETTERS = re.compile(r"[^\W\d_]+")


@dataclass(frozen=True)
class PinInfo:
    """One PIN code of the directory: its district (the "city" a courier means), state, and centroid. The
    directory lacks the district of about 100 PIN codes and the state of about 80: None then."""

    pincode: str
    city: str | None
    state: str | None
    lat: float | None = None
    lon: float | None = None


def normalise_pincode(value: object) -> str | None:
    """The six digits of a well-formed PIN code ("682016" from " 682016 " or "682 016"), else None.

    Well-formed says nothing of existence: 999999 is well-formed, and no post office has it.
    """
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str):
        return None
    text = value.strip()
    return text.replace(" ", "") if _WELL_FORMED.fullmatch(text) else None


def pincode_from_destination(text: str | None) -> str | None:
    """The last six-digit group of a destination ("12 MG Road, Kochi 682016" → "682016"), else None.

    A PIN code ends an Indian address, after the city; "682 016" counts as one group. Digits that belong to a
    longer run (a phone number) are not a group. The group is returned as written, without its space: whether
    it is a real PIN code is for the directory to say.
    """
    if not text:
        return None
    # Digits of any script as ASCII ("६८२०१६", as some Hindi addresses are written, is 682016).
    text = "".join(str(unicodedata.decimal(c)) if c.isdecimal() else c for c in text)
    groups = _IN_TEXT.findall(text)
    return groups[-1].replace(" ", "") if groups else None


def place_name(upper_case: str) -> str:
    """A directory name as people write it: "ANDAMAN AND NICOBAR ISLANDS" → "Andaman and Nicobar Islands",
    "KAIMUR (BHABUA)" → "Kaimur (Bhabua)", "Y.S.R." stays "Y.S.R."."""
    position = 0

    def word(match: re.Match) -> str:
        nonlocal position
        position += 1
        text = match.group(0).lower()
        return text if position > 1 and text in _MINOR_WORDS else text.capitalize()

    return _LETTERS.sub(word, " ".join(upper_case.split()))
