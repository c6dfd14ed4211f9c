"""India's PIN code directory, offline: which PIN codes exist, their district and state, and their centroid.

Rules: no network at run time. The directory is India Post's "All India Pincode Directory" (GODL-India licence)
as the `indian-pincode` package ships it (pinned in requirements.txt; it loads its data lazily, once per
process). Centroids are the same snapshot's, vendored in data/pincode-centroids.csv.gz (see data/README.md)
and read once per process on first use. A PIN code's "city" is its district (the first, for the few PIN
codes that span several; None for the few it has none); names are given as people write them ("Ernakulam",
"Kerala").
"""
from __future__ import annotations

import csv
import gzip
import threading
from functools import lru_cache
from pathlib import Path

import indian_pincode

from app.domain.pincodes import PinInfo, normalise_pincode, pincode_from_destination, place_name

CENTROIDS = Path(__file__).resolve().parent / "data" / "pincode-centroids.csv.gz"
# The India Post snapshot the centroids were taken from: the directory package's DATA_VERSION must match.
CENTROIDS_SNAPSHOT = "2025.10.03"

_centroids: dict[str, tuple[float, float]] | None = None
_centroids_lock = threading.Lock()

__all__ = ["PinInfo", "directory_size", "directory_version", "is_valid_pincode", "pincode_centroid",
           "pincode_from_destination", "pincode_info"]


def pincode_info(pin: object) -> PinInfo | None:
    """The directory's record of a PIN code (any well-formed spelling: "682016", "682 016"); None when it is
    malformed or no post office has it."""
    pincode = normalise_pincode(pin)
    if pincode is None:
        return None
    details = indian_pincode.get_details(pincode)
    if details is None:
        return None
    districts = details["districts"]
    state = details["state"] or (details["states"][0] if details["states"] else None)
    lat, lon = _load_centroids().get(pincode, (None, None))
    return PinInfo(pincode=pincode, city=place_name(districts[0]) if districts else None,
                   state=place_name(state) if state else None, lat=lat, lon=lon)


def pincode_centroid(pin: object) -> tuple[float, float] | None:
    """(lat, lon) of a PIN code's centroid; None when it is malformed or the snapshot has none. Cheaper than
    pincode_info (no directory record): a bulk import places every row with it."""
    pincode = normalise_pincode(pin)
    return None if pincode is None else _load_centroids().get(pincode)


def is_valid_pincode(pin: object) -> bool:
    """Whether the PIN code exists in the directory (not merely well-formed: 999999 is not valid)."""
    pincode = normalise_pincode(pin)
    return pincode is not None and indian_pincode.validate(pincode)


def directory_version() -> str:
    """The India Post snapshot the directory was built from, e.g. "2025.10.03"."""
    return indian_pincode.DATA_VERSION


@lru_cache(maxsize=1)
def directory_size() -> int:
    """How many PIN codes the directory holds."""
    return len(indian_pincode.get_pincodes())


def _load_centroids() -> dict[str, tuple[float, float]]:
    global _centroids
    if _centroids is None:
        with _centroids_lock:
            if _centroids is None:
                with gzip.open(CENTROIDS, "rt", encoding="utf-8", newline="") as rows:
                    _centroids = {row["pincode"]: (float(row["latitude"]), float(row["longitude"]))
                                  for row in csv.DictReader(rows)}
    return _centroids
