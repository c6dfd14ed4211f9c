"""The `alerts.watch` job: raise the alerts the network's state calls for, then queue the admins' digest."""
from __future__ import annotations

from datetime import datetime

from flask import current_app

from app.services.operations.alert_digest import queue_alert_digest
from app.services.operations.watch import watch_alerts


def watch_for_alerts(now: datetime) -> str | None:
    """Raise SLA, silent-courier and unconfirmed-delivery alerts (app.services.operations.watch), and queue the
    digest to ADMIN_ALERT_EMAILS when one is due (app.services.operations.alert_digest).

    Raising and the digest share the runner's transaction: an alert raised now goes into a digest due now.
    Returns what was done, None when nothing was.
    """
    config = current_app.config
    raised = watch_alerts(now, silent_after=config["COURIER_SILENT_AFTER"],
                          unconfirmed_after=config["UNCONFIRMED_OUT_FOR_DELIVERY_AFTER"],
                          timezone=config["DISPLAY_TIMEZONE"])
    emailed = queue_alert_digest(now, config["ALERT_DIGEST_EVERY"], config.get("ADMIN_ALERT_EMAILS") or [])
    words = [f"raised {count} {kind}" for kind, count in sorted(raised.items())]
    if emailed:
        words.append(f"queued a digest of {emailed} alert{'' if emailed == 1 else 's'}")
    return "; ".join(words) or None
