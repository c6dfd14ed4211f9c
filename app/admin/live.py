"""The live map and the staff stream (VIEW_OPERATIONS; read only, so nothing here is audited):

- GET /admin/live → the page (figures, the map, the same as a table below it); JSON for `Accept:
  application/json` or `?format=json`: `{"figures", "couriers", "zones"}` with an ETag, which the page polls
  (If-None-Match) when its stream fails.
- GET /admin/live/couriers/<username> → `{"courier", "stops"}`: the courier's run sheet in sequence, last seen,
  COD collected (the map's side panel when a courier is clicked).
- GET /admin/live/events → server-sent events: `courier` (a courier's entry whenever it changes: position,
  state), `shipment` (`{"tracking_id", "status", "zone_id", "updated_at"}` on each status change) and `alert`
  (`{"id", "kind", "raised_at", "tracking_id", "courier", "details"}`); every courier's entry first.
"""
from __future__ import annotations

import hashlib
import json
from urllib.parse import urlsplit

from flask import Response, current_app, render_template, request

from app.admin import bp
from app.auth.guard import staff_required
from app.domain.field import LiveState
from app.domain.roles import Permission
from app.domain.timeutil import utcnow
from app.errors import StreamsUnavailable, wants_html
from app.services.operations import live
from app.web.security import CONTENT_SECURITY_POLICY
from app.web.sse import EventIds, event_stream, json_event

STATE_CLASSES = {state.value: f"courier-state--{state.value}" for state in LiveState}


@bp.get("/live")
@staff_required(Permission.VIEW_OPERATIONS)
def live_map():
    overview = live.live_overview(utcnow())
    if request.args.get("format") == "json" or not wants_html():
        body = json.dumps(overview, separators=(",", ":"), ensure_ascii=False)
        response = Response(body, mimetype="application/json")
        response.set_etag(hashlib.blake2b(body.encode(), digest_size=12).hexdigest())
        response.headers["Cache-Control"] = "private, no-cache"
        return response.make_conditional(request)
    config = current_app.config
    response = Response(render_template(
        "admin/live.html", overview=overview, tile_url=config["MAP_TILE_URL"] or "",
        tile_attribution=config["MAP_TILE_ATTRIBUTION"] or "", streams=bool(config["SSE_STREAMS"])))
    if config["MAP_TILE_URL"]:
        response.headers["Content-Security-Policy"] = tiles_policy(config["MAP_TILE_URL"])
    return response


def tiles_policy(tile_url: str) -> str:
    """The page's policy with the tile server's origin allowed for images (and nothing else)."""
    parts = urlsplit(tile_url)
    origin = f"{parts.scheme}://{parts.netloc.replace('{s}', '*')}"  # {s}: Leaflet's subdomains a, b, c
    return CONTENT_SECURITY_POLICY.replace("img-src 'self' data:", f"img-src 'self' data: {origin}", 1)


@bp.get("/live/couriers/<username>")
@staff_required(Permission.VIEW_OPERATIONS)
def live_courier(username: str):
    return Response(json.dumps(live.courier_stops(username, utcnow()), separators=(",", ":"), ensure_ascii=False),
                    mimetype="application/json")


@bp.get("/live/events")
@staff_required(Permission.VIEW_OPERATIONS)
def live_events():
    if not current_app.config["SSE_STREAMS"]:
        raise StreamsUnavailable()
    hub = live.live_hub(current_app._get_current_object())
    subscription = hub.subscribe({("shipment", None), ("courier", None), ("alert", None)})
    if subscription is None:
        raise StreamsUnavailable()
    ids, sent = EventIds(), {}

    def couriers(courier_ids=None):
        events = []
        for entry in live.live_couriers(utcnow(), courier_ids=courier_ids):
            data = entry.to_dict()
            if sent.get(entry.username) != data:
                sent[entry.username] = data
                events.append(json_event(data, "courier", ids.next()))
        return events

    def on_change(changes):
        by_kind: dict[str, set[str]] = {}
        for kind, key in changes:
            by_kind.setdefault(kind, set()).add(key)
        events = [json_event(e, "shipment", ids.next()) for e in live.shipment_events(by_kind.get("shipment", ()))]
        if "courier" in by_kind:
            events += couriers(live.courier_ids_of(by_kind["courier"]))
        events += [json_event(e, "alert", ids.next()) for e in live.alert_events(by_kind.get("alert", ()))]
        return events

    # Time alone turns couriers idle or offline: every heartbeat looks at all of them again.
    return event_stream(subscription, first=couriers, on_change=on_change, on_heartbeat=couriers)
