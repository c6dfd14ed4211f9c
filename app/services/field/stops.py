"""Run sheet stops closed by the status-change core: a parcel that reaches a status past its stop (Delivered,
Delivery Attempted, Picked Up, On Hold, a return, a cancellation: app.domain.field.closes_stop) no longer has an
open stop, whoever recorded the change; the streams of each courier who had one hear of it (the live map's
stop counts, the "stops before you" of the courier's other recipients). Models and the live streams' publisher
only, so the core can call it without a cycle."""
from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, select, update

from app.domain.field import StopState, closes_stop
from app.extensions import db
from app.models import RunSheet, RunSheetStop
from app.services.operations.live import publish_courier_changed

_STOPS = RunSheetStop.__table__
_COURIERS_OF_OPEN_STOPS = (
    select(RunSheet.courier_id).distinct().join(_STOPS, _STOPS.c.runsheet_id == RunSheet.id)
    .where(_STOPS.c.shipment_id.in_(bindparam("shipments", expanding=True)), _STOPS.c.state == StopState.OPEN.value)
)
_CLOSE = (update(_STOPS)
          .where(_STOPS.c.shipment_id == bindparam("shipment"), _STOPS.c.state == StopState.OPEN.value)
          .values(state=StopState.DONE.value, outcome=bindparam("outcome"), closed_at=bindparam("closed")))


def close_stops(new_status_by_shipment: dict[int, str], now: datetime) -> None:
    """Close the open stop, if any, of every shipment whose new status ends it, in one executemany."""
    rows = [{"shipment": shipment_id, "outcome": status, "closed": now}
            for shipment_id, status in new_status_by_shipment.items() if closes_stop(status)]
    if not rows:
        return
    couriers = db.session.scalars(_COURIERS_OF_OPEN_STOPS, {"shipments": [row["shipment"] for row in rows]}).all()
    db.session.connection().execute(_CLOSE, rows)
    for courier_id in couriers:
        publish_courier_changed(courier_id)
