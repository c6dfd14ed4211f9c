"""GET /track/<id>/events: a shipment's public tracking JSON pushed as server-sent events (app/web/sse.py).

Public like GET /track/<id> and under the same rate limits (a miss counts as one). Each event's data is the same
document GET /track/<id> answers as JSON (DESIGN.md rule 9: nothing private), its `id` the document's ETag; a new
event follows within a second of any change to it, including the courier's position while the answer shows it.
"""
from flask import current_app

from app.domain.status import Status
from app.domain.tracking_ids import normalise_tracking_id
from app.errors import NotFound, StreamsUnavailable
from app.services.operations.live import live_hub, open_stop_courier
from app.services.shipments.public_document import public_tracking_document
from app.tracking import bp
from app.tracking.routes import track_limit, track_miss_limit
from app.web.sse import Event, event_stream


@bp.get("/track/<tracking_id>/events")
@track_limit
@track_miss_limit
def track_events(tracking_id: str):
    if not current_app.config["SSE_STREAMS"]:
        raise StreamsUnavailable()
    public_tracking_document(tracking_id)  # an unknown ID is a 404 (a miss) before any stream opens
    tracking_id = normalise_tracking_id(tracking_id)
    subscription = live_hub(current_app._get_current_object()).subscribe({("shipment", tracking_id)})
    if subscription is None:
        raise StreamsUnavailable()
    sent = {"etag": None, "courier": None}

    def current() -> list[Event]:
        try:
            document = public_tracking_document(tracking_id)
        except NotFound:
            return []
        _follow_courier(subscription, sent, document.status, tracking_id)
        if document.etag == sent["etag"]:
            return []
        sent["etag"] = document.etag
        return [Event(document.body.decode(), id=document.etag)]

    return event_stream(subscription, first=current, on_change=lambda _changes: current())


def _follow_courier(subscription, sent: dict, status: str, tracking_id: str) -> None:
    """While the parcel is Out for Delivery the answer may show where its courier is: their moves wake the
    stream too (the document says whether they changed anything public)."""
    if status != Status.OUT_FOR_DELIVERY:
        return
    courier_id = open_stop_courier(tracking_id)
    if courier_id is not None and courier_id != sent["courier"]:
        sent["courier"] = courier_id
        subscription.add(("courier", str(courier_id)))
