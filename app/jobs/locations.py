"""The `locations.purge` job: courier positions are kept LOCATION_RETENTION_DAYS, then deleted."""
from __future__ import annotations

from datetime import datetime, timedelta

from flask import current_app

from app.extensions import db
from app.services.field.locations import PURGE_CHUNK, purge_positions

# At most this many chunks a run (a million positions): a backlog (the first run after the retention was
# shortened) is worked off over a few runs rather than holding the runner for long.
MAX_CHUNKS_PER_RUN = 200


def purge_old_positions(now: datetime) -> str | None:
    """Delete courier positions older than LOCATION_RETENTION_DAYS (0 or less: keep them all).

    In chunks of PURGE_CHUNK, each committed on its own, so no transaction or lock grows with the backlog.
    Returns how many went, None when none were due.
    """
    days = int(current_app.config.get("LOCATION_RETENTION_DAYS") or 0)
    if days <= 0:
        return None
    cutoff, purged = now - timedelta(days=days), 0
    for _ in range(MAX_CHUNKS_PER_RUN):
        deleted = purge_positions(cutoff, PURGE_CHUNK)
        db.session.commit()
        purged += deleted
        if deleted < PURGE_CHUNK:
            break
    if not purged:
        return None
    return f"purged {purged} position{'' if purged == 1 else 's'} older than {days} days"
