"""The `estimates.refresh` job: rebuild the estimated-delivery table once it is stale."""
from __future__ import annotations

from datetime import datetime

from flask import current_app

from app.services.shipments.estimates import refresh_if_stale


def refresh_when_stale(now: datetime) -> str | None:
    """Rebuild the estimated-delivery table when it is older than ESTIMATES_REFRESH_SECONDS.

    From the last ETA_WINDOW_DAYS of deliveries, ETA_MIN_SAMPLES per area and status
    (app.services.shipments.estimates.refresh_if_stale). Returns what was rebuilt, None when the table was fresh.
    """
    config = current_app.config
    max_age = float(config.get("ESTIMATES_REFRESH_SECONDS") or 0)
    if max_age <= 0:
        return None
    rows = refresh_if_stale(max_age, int(config["ETA_WINDOW_DAYS"]), int(config["ETA_MIN_SAMPLES"]), now=now)
    return None if rows is None else f"rebuilt {rows} area/status rows"
