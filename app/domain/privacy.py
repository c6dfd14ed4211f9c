"""What a public page may say about the people and the place of a shipment (DESIGN.md rule 9).

Public answers carry first names with an initial ("Vikram N.") and the destination's city or postal area, never
the full names, the street address or any contact. These are pure functions: no database, no request.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Protocol

# A postal code inside an address: India's six-digit PIN, also written "682 031".
_POSTAL_CODE = re.compile(r"(?<!\d)\d{3}\s?\d{3}(?!\d)")
_POSTAL_LABEL = re.compile(r"\b(?:pin\s*code|pin|postal\s*code|zip)\b\s*[:.-]?", re.IGNORECASE)
# Parts of an address that say nothing about where in the country it is.
_COUNTRIES = frozenset({"india", "bharat", "in"})
# States and union territories: shown only when the address names no city and no postal code.
_REGIONS = frozenset({
    "andhra pradesh", "arunachal pradesh", "assam", "bihar", "chhattisgarh", "goa", "gujarat", "haryana",
    "himachal pradesh", "jharkhand", "karnataka", "kerala", "madhya pradesh", "maharashtra", "manipur",
    "meghalaya", "mizoram", "nagaland", "odisha", "punjab", "rajasthan", "sikkim", "tamil nadu", "telangana",
    "tripura", "uttar pradesh", "uttarakhand", "west bengal", "andaman and nicobar islands", "chandigarh",
    "dadra and nagar haveli and daman and diu", "jammu and kashmir", "ladakh", "lakshadweep", "puducherry",
})
_PART_SEPARATORS = re.compile(r"[,;\n\r]+")
AREA_MAX = 60


def first_name_and_initial(full_name: str) -> str:
    """"Vikram Nair" → "Vikram N."; one word stays as it is; "" for an empty name.

    The first word and the first letter of the last word: the middle of a name is left out too.
    """
    words = full_name.split()
    if not words:
        return ""
    if len(words) == 1:
        return words[0]
    return f"{words[0]} {words[-1][0].upper()}."


def destination_area(destination: str) -> str | None:
    """The city (or postal area) of a free-text destination, safe to show publicly; None if there is none.

    Rules: the destination is split at commas (also semicolons and line breaks). From the last part backwards,
    postal codes are taken out, and a part that is empty or only a country name is skipped; the first part left
    is the city, provided it holds no digit (a house or flat number means it is street-level, and everything
    before it is even more precise). A state's name is passed over like a country's, since the city comes
    before it. When no city is found, the postal code (a postal area) is shown instead, as "PIN 682031";
    else the state; and when there is none of these, nothing is.
    """
    postal_code = region = None
    for part in reversed(_PART_SEPARATORS.split(destination)):
        codes = _POSTAL_CODE.findall(part)
        if codes and postal_code is None:
            postal_code = codes[-1].replace(" ", "")
        remainder = _POSTAL_LABEL.sub(" ", _POSTAL_CODE.sub(" ", part))
        remainder = " ".join(remainder.split()).strip(" .:-")
        if not remainder or remainder.lower() in _COUNTRIES:
            continue
        if remainder.lower() in _REGIONS:
            region = region or remainder
            continue
        if any(ch.isdigit() for ch in remainder):
            break
        return remainder[:AREA_MAX]
    if postal_code:
        return f"PIN {postal_code}"
    return region[:AREA_MAX] if region else None


class _HasParties(Protocol):
    sender_name: str
    receiver_name: str
    destination: str


@dataclass(frozen=True)
class Parties:
    """Who sends, who receives, and where to, as a page may show them."""

    sender: str
    receiver: str
    destination: str | None
    full: bool


def shipment_parties(shipment: _HasParties, full: bool = False) -> Parties:
    """The full names and address (staff, or a visitor who gave the proof), else the public short forms."""
    if full:
        return Parties(shipment.sender_name, shipment.receiver_name, shipment.destination, full=True)
    return Parties(first_name_and_initial(shipment.sender_name), first_name_and_initial(shipment.receiver_name),
                   destination_area(shipment.destination), full=False)
