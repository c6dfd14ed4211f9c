"""The `points.geocode` job: better points for parcels still placed at their PIN code's centroid."""
from __future__ import annotations

from datetime import datetime

from flask import current_app

from app.services.planning.geocoders import open_geocoder
from app.services.planning.points import refine_points


def refine_parcel_points(now: datetime) -> str | None:
    """Refine open parcels' points from the geocoder cache and the GEOCODER (app.services.planning.points).

    A misconfigured GEOCODER fails the run (logged by the runner, tried again at the next interval); a geocoder
    that cannot answer ends the run early, keeping what was done. None when nothing changed.
    """
    geocoder = open_geocoder(current_app.config)
    result = refine_points(geocoder, now)
    if not result.refined and not result.looked_up:
        return None
    words = f"refined {result.refined} parcel point(s), looked up {result.looked_up} address(es)"
    return words + (f"; stopped: {result.unavailable}" if result.unavailable else "")
