"""The live map's page and JSON (/admin/live), a courier's run sheet for it, its three figures, the tile host in
its policy, and the vendored Leaflet. The page in a browser: tests/browser/test_live_map.py."""
from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import pytest

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import Shipment
from app.services.operations.live import live_figures
from tests.location_support import OUT_FOR_DELIVERY, make_courier, move_to, run_sheet

ROOT = Path(__file__).resolve().parents[1]


def test_the_vendored_leaflet_is_the_pinned_npm_packages_files():
    package = ROOT / "node_modules" / "leaflet"
    if not package.is_dir():
        pytest.skip("node_modules/leaflet is not installed (npm ci)")
    pinned = json.loads((ROOT / "package.json").read_text())["devDependencies"]["leaflet"]
    assert json.loads((package / "package.json").read_text())["version"] == pinned
    vendor = ROOT / "app" / "static" / "vendor" / "leaflet"
    for name in ("leaflet.js", "leaflet.css"):
        assert (vendor / name).read_bytes() == (package / "dist" / name).read_bytes(), name
    assert (vendor / "LICENSE-leaflet.txt").read_bytes() == (package / "LICENSE").read_bytes()


def test_the_live_map_is_for_staff_who_view_operations(client, auth):
    assert client.get("/admin/live", headers={"Accept": "application/json"}).status_code == 401
    auth.login("ravi", role="courier")
    assert client.get("/admin/live", headers={"Accept": "application/json"}).status_code == 403
    assert client.get("/admin/live/couriers/ravi", headers={"Accept": "application/json"}).status_code == 403
    assert client.get("/admin/live/events", headers={"Accept": "application/json"}).status_code == 403


def test_the_json_has_figures_couriers_and_zones_and_answers_304_when_nothing_changed(app, client, auth,
                                                                                      create_shipment):
    courier_id = make_courier(app, "ravi", last_lat=12.97, last_lon=77.59, last_seen_at=utcnow(),
                              moved_at=utcnow(), anchor_lat=12.97, anchor_lon=77.59)
    parcel = create_shipment()
    move_to(app, parcel, *OUT_FOR_DELIVERY)
    run_sheet(app, courier_id, [(parcel, "open")])
    auth.login("viewer1", role="viewer")
    response = client.get("/admin/live?format=json")
    assert response.status_code == 200
    body = response.get_json()
    assert set(body) == {"figures", "couriers", "zones"}
    [courier] = body["couriers"]
    assert courier["username"] == "ravi" and courier["state"] == "active" and courier["stops_open"] == 1
    assert courier["position"] == {"lat": 12.97, "lon": 77.59} and courier["cod_collected"] == "0.00"
    assert body["zones"]["type"] == "FeatureCollection"
    again = client.get("/admin/live?format=json", headers={"If-None-Match": response.headers["ETag"]})
    assert again.status_code == 304
    stops = client.get("/admin/live/couriers/ravi").get_json()
    assert [s["tracking_id"] for s in stops["stops"]] == [parcel] and stops["courier"]["username"] == "ravi"
    assert client.get("/admin/live/couriers/nobody").status_code == 404


def test_a_courier_with_a_parcel_at_risk_is_red(app, client, auth, create_shipment):
    courier_id = make_courier(app, "ravi", last_lat=12.97, last_lon=77.59, last_seen_at=utcnow(), moved_at=utcnow())
    parcel = create_shipment()
    move_to(app, parcel, *OUT_FOR_DELIVERY)
    run_sheet(app, courier_id, [(parcel, "open")])
    with app.app_context():  # promised in a minute: the estimate's latest time is later (sla.py says at risk)
        soon = utcnow() + timedelta(minutes=1)
        db.session.query(Shipment).filter_by(tracking_id=parcel).update({"promised_by": soon})
        db.session.commit()
    auth.login("viewer1", role="viewer")
    [courier] = client.get("/admin/live?format=json").get_json()["couriers"]
    assert courier["state"] == "at_risk" and courier["stops_at_risk"] == 1


def test_the_three_figures_and_their_minute_in_the_cache(app, create_shipment):
    first, second = make_courier(app, "ravi"), make_courier(app, "asha")
    delivered, open_one = create_shipment(), create_shipment()
    move_to(app, delivered, *OUT_FOR_DELIVERY)
    move_to(app, open_one, *OUT_FOR_DELIVERY)
    run_sheet(app, first, [(delivered, "done"), (open_one, "open")], outcome="Delivered")
    now = utcnow()
    with app.test_request_context():
        app.extensions.pop("waybill_live_figures", None)
        figures = live_figures(now)
        assert (figures.on_run_sheets, figures.delivered, figures.completion_rate) == (2, 1, 0.5)
        assert (figures.couriers_on_shift, figures.couriers_with_open_stops, figures.utilisation) == (2, 1, 0.5)
        assert figures.at_risk == 0
        run_sheet(app, second, [(create_shipment(), "open")])
        assert live_figures(now + timedelta(seconds=59)) is figures  # at most once a minute
        assert live_figures(now + timedelta(seconds=61)).couriers_with_open_stops == 2
        app.extensions.pop("waybill_live_figures", None)


@pytest.mark.one_database
def test_the_tile_host_joins_the_policy_only_when_tiles_are_set(app, client, auth):
    auth.login("viewer1", role="viewer")
    plain = client.get("/admin/live", headers={"Accept": "text/html"})
    assert plain.status_code == 200 and "img-src 'self' data:;" in plain.headers["Content-Security-Policy"]
    assert b"data-tile-url=\"\"" in plain.data
    app.config.update(MAP_TILE_URL="https://{s}.tiles.example.org/{z}/{x}/{y}.png",
                      MAP_TILE_ATTRIBUTION="© Example contributors")
    tiled = client.get("/admin/live", headers={"Accept": "text/html"})
    policy = tiled.headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://*.tiles.example.org;" in policy
    assert "script-src 'self';" in policy and "connect-src 'self'" in policy
    assert "© Example contributors".encode() in tiled.data
