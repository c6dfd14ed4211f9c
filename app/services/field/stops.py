"""Run sheet stops closed by the status-change core: a parcel that reaches a status past its stop (Delivered,
Delivery Attempted, Picked Up, On Hold, a return, a cancellation: app.domain.field.closes_stop) no longer has an
open stop, whoever recorded the change. Models only, so the core can call it without a cycle."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, update

from app.domain.field import StopState, closes_stop
from app.extensions import db
from app.models import RunSheetStop

_STOPS = RunSheetStop.__table__
_CLOSE = (update(_STOPS)
          .where(_STOPS.c.shipment_id == bindparam("shipment"), _STOPS.c.state == StopState.OPEN.value)
          .values(state=StopState.DONE.value, outcome=bindparam("outcome"), closed_at=bindparam("closed")))


def close_stops(new_status_by_shipment: dict[int, str], now: datetime) -> None:
    """Close the open stop, if any, of every shipment whose new status ends it, in one executemany."""
    rows = [{"shipment": shipment_id, "outcome": status, "closed": now}
            for shipment_id, status in new_status_by_shipment.items() if closes_stop(status)]
    if rows:
        db.session.connection().execute(_CLOSE, rows)
