"""Delivery zones: outlines checked (each failure kind named under fields.geometry), look-ups by the index (a
border point goes to the lowest id), open parcels placed again as zones change, the admin JSON and page, roles,
CSRF and the audit trail."""
from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import AuditEntry, Shipment, Zone
from app.services.planning import zones as zone_service
from app.services.shipments.status_changes import record_status_change
from tests.conftest import VALID_BOOKING
from tests.test_public_privacy import csrf_from

HTML = {"Accept": "text/html"}
JSON_ACCEPT = {"Accept": "application/json"}


def square(west: float, south: float, east: float, north: float) -> dict:
    return {"type": "Polygon", "coordinates": [[[west, south], [east, south], [east, north], [west, north],
                                                [west, south]]]}


# Two squares over Kochi sharing the meridian 76.28 as their border.
WEST = square(76.20, 9.90, 76.28, 10.05)
EAST = square(76.28, 9.90, 76.36, 10.05)
IN_WEST, IN_EAST, ON_BORDER, OUTSIDE = (9.95, 76.22), (9.95, 76.33), (9.95, 76.28), (12.97, 77.59)


@pytest.fixture
def admin(auth):
    auth.login("boss", role="admin")
    return auth


def post_zone(client, auth, body: dict, url: str = "/admin/zones"):
    return client.post(url, json=body, headers={**auth.headers(), **JSON_ACCEPT})


def make_zone(client, auth, name: str, geometry: dict, **extra) -> int:
    response = post_zone(client, auth, {"name": name, "geometry": geometry, **extra})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["id"]


def book_at(client, lat: float, lon: float, **booking) -> str:
    response = client.post("/create", json={**VALID_BOOKING, "destination_lat": lat, "destination_lon": lon,
                                            **booking})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["tracking_id"]


def zone_of(app, tracking_id: str) -> int | None:
    with app.app_context():
        return db.session.scalar(select(Shipment.zone_id).where(Shipment.tracking_id == tracking_id))


def zone_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Zone))


def audit_rows(app, action: str) -> list[AuditEntry]:
    with app.app_context():
        rows = list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)))
        db.session.expunge_all()
        return rows


# --- checking outlines ---------------------------------------------------------------------------------------------

@pytest.mark.one_database
@pytest.mark.parametrize("geometry", [
    WEST,
    {"type": "MultiPolygon", "coordinates": [WEST["coordinates"], square(76.40, 9.90, 76.45, 9.95)["coordinates"]]},
    # a hole, altitudes (dropped), and the outline sent as GeoJSON text
    {"type": "Polygon", "coordinates": [WEST["coordinates"][0],
                                        [[76.22, 9.92], [76.22, 9.94], [76.24, 9.94], [76.24, 9.92], [76.22, 9.92]]]},
    {"type": "Polygon", "coordinates": [[[76.2, 9.9, 3.0], [76.28, 9.9, 3.0], [76.28, 10.05, 3.0], [76.2, 9.9, 3.0]]]},
    json.dumps(EAST),
])
def test_polygons_and_multipolygons_are_accepted(app_ctx, geometry):
    outline = zone_service.check_outline(geometry)
    assert outline.geojson["type"] in ("Polygon", "MultiPolygon") and outline.shape.area > 0
    coordinates = outline.geojson["coordinates"]
    polygons = [coordinates] if outline.geojson["type"] == "Polygon" else coordinates
    assert all(len(position) == 2 for polygon in polygons for ring in polygon for position in ring)


@pytest.mark.one_database
@pytest.mark.parametrize("geometry, says", [
    ({"type": "Polygon", "coordinates": [[[76.2, 9.9], [76.3, 9.9], [76.3, 10.0], [76.2, 10.0]]]},
     "Ring 1 is not closed: its last point must repeat its first."),
    ({"type": "Polygon", "coordinates": [[[76.2, 9.9], [76.3, 10.0], [76.3, 9.9], [76.2, 10.0], [76.2, 9.9]]]},
     "The outline crosses itself near [76.25, 9.95]."),
    ({"type": "Polygon", "coordinates": [[[76.2, 9.9], [76.3, 9.9], [76.2, 9.9]]]},
     "Ring 1 has 3 points: a ring needs at least 4, the last repeating the first."),
    ({"type": "Polygon", "coordinates": [[[200, 9.9], [76.3, 9.9], [76.3, 10.0], [200, 9.9]]]},
     "Coordinates out of range: point 1 of ring 1 is [200, 9.9]"),
    ({"type": "Polygon", "coordinates": [[[9.9, 120.0], [9.9, 121.0], [10.0, 121.0], [9.9, 120.0]]]},
     "GeoJSON puts the longitude first."),
    ("POLYGON((76.2 9.9, 76.3 9.9, 76.3 10, 76.2 9.9))", "Not GeoJSON: the text is not valid JSON."),
    ([[76.2, 9.9], [76.3, 9.9]], 'Not GeoJSON: expected an object with "type" and "coordinates".'),
    ({"coordinates": WEST["coordinates"]}, 'Not GeoJSON: the object has no "type".'),
    ({"type": "Polygon"}, 'Not GeoJSON: a Polygon needs "coordinates"'),
    ({"type": "Polygon", "coordinates": [[[76.2, "9.9"], [76.3, 9.9], [76.3, 10.0], [76.2, 9.9]]]},
     "Not GeoJSON: point 1 of ring 1 is not [longitude, latitude]."),
    ({"type": "Point", "coordinates": [76.2, 9.9]}, "A Point has no area: a zone is a Polygon or a MultiPolygon."),
    ({"type": "Feature", "geometry": WEST, "properties": {}}, "This is a GeoJSON Feature: send the geometry itself"),
    ({"type": "Circle", "coordinates": [76.2, 9.9]}, 'Not GeoJSON: "Circle" is not a geometry type'),
    ({"type": "MultiPolygon", "coordinates": [WEST["coordinates"], square(76.25, 9.9, 76.3, 10.0)["coordinates"]]},
     "a MultiPolygon's polygons must not overlap"),
    ({"type": "Polygon", "coordinates": [WEST["coordinates"][0],
                                         square(76.5, 9.9, 76.6, 10.0)["coordinates"][0]]},
     "A hole (ring 2 or later) lies outside the outer ring."),
    ({"type": "Polygon", "coordinates": [[[76.2, 9.9], [76.3, 9.9], [76.4, 9.9], [76.2, 9.9]]]},
     "The outline encloses no area: its points lie on one line."),
])
def test_each_bad_outline_is_a_400_naming_what_is_wrong(app, client, admin, geometry, says):
    response = post_zone(client, admin, {"name": "North", "geometry": geometry})
    assert response.status_code == 400, response.get_json()
    assert says in response.get_json()["fields"]["geometry"]
    assert zone_count(app) == 0 and audit_rows(app, "zone_created") == []


@pytest.mark.one_database
@pytest.mark.parametrize("body, fields", [
    ({"geometry": WEST}, {"name": "Enter the zone's name."}),
    ({"name": "North"}, {"geometry": "Paste the zone's outline: a GeoJSON Polygon or MultiPolygon."}),
    ({"name": "x" * 81, "geometry": WEST}, {"name": "At most 80 characters."}),
    ({"name": 7, "geometry": WEST}, {"name": "Must be a string."}),
    ({"name": "North", "geometry": WEST, "hub": [9.9, 76.2]}, {"hub": "Must be a JSON object."}),
    ({"name": "North", "geometry": WEST, "hub": {"lat": 9.9, "lon": 76.2, "alt": 3}},
     {"hub": 'Must be {"lat": …, "lon": …}, or null for none.'}),
    ({"name": "North", "geometry": WEST, "hub": {"lat": 95, "lon": 76.2}}, {"hub": "lat: Must be from -90 to 90."}),
    ({"name": "North", "geometry": WEST, "hub": {"lat": 9.9}},
     {"hub": "lon: Give both the latitude and the longitude, or neither."}),
    ({"name": "North", "geometry": WEST, "colour": "red"}, {"colour": "Unknown field."}),
])
def test_other_bad_fields_are_named(app, client, admin, body, fields):
    response = post_zone(client, admin, body)
    assert response.status_code == 400 and response.get_json()["fields"] == fields
    assert zone_count(app) == 0


def test_a_taken_name_is_a_409_whatever_its_case(app, client, admin):
    make_zone(client, admin, "North", WEST)
    response = post_zone(client, admin, {"name": "  north ", "geometry": EAST})
    assert response.status_code == 409 and response.get_json()["fields"]["name"] == \
        "There is already a zone called north."
    east = make_zone(client, admin, "East", EAST)
    renamed = post_zone(client, admin, {"name": "NORTH"}, f"/admin/zones/{east}")
    assert renamed.status_code == 409
    assert zone_count(app) == 2 and len(audit_rows(app, "zone_created")) == 2


# --- looking points up ---------------------------------------------------------------------------------------------

def test_a_point_on_a_border_goes_to_the_lowest_id_every_time(app, client, admin):
    east = make_zone(client, admin, "East", EAST)  # created first: the lower id
    west = make_zone(client, admin, "West", WEST)
    with app.app_context():
        assert [zone_service.zone_at(*ON_BORDER) for _ in range(3)] == [east] * 3
        assert zone_service.zone_at(*IN_WEST) == west and zone_service.zone_at(*IN_EAST) == east
        assert zone_service.zone_at(*OUTSIDE) is None and zone_service.zone_at(None, None) is None
        corner = (10.05, 76.28)  # a vertex of both
        assert zone_service.zone_index().zones_at([corner, IN_WEST, ON_BORDER]) == [east, west, east]


def test_overlapping_zones_resolve_to_the_lowest_id(app, client, admin):
    big = make_zone(client, admin, "Kochi", square(76.0, 9.8, 76.5, 10.2))
    make_zone(client, admin, "Fort", WEST)
    with app.app_context():
        assert zone_service.zone_at(*IN_WEST) == big


def test_the_index_follows_a_change_made_by_another_process(app, client, admin):
    west = make_zone(client, admin, "West", WEST)
    with app.app_context():
        assert zone_service.zone_at(*IN_EAST) is None  # the index is built and kept
        # Another process moves the outline (its clock a little ahead): the version read sees it.
        db.session.execute(update(Zone).where(Zone.id == west)
                           .values(geometry=EAST, updated_at=utcnow() + timedelta(seconds=5)))
        db.session.commit()
        assert zone_service.zone_at(*IN_EAST) == west and zone_service.zone_at(*IN_WEST) is None


def test_a_change_from_a_lagging_clock_still_moves_the_version(app, client, admin):
    west = make_zone(client, admin, "West", WEST)
    with app.app_context():
        db.session.execute(update(Zone).where(Zone.id == west).values(updated_at=utcnow() + timedelta(hours=1)))
        db.session.commit()
        before = zone_service.zones_version()
        zone_service.update_zone(west, {"geometry": EAST}, actor="boss")
        db.session.commit()
        assert zone_service.zones_version() != before and zone_service.zone_at(*IN_EAST) == west


# --- parcels placed again ------------------------------------------------------------------------------------------

def test_zones_place_open_parcels_as_they_are_created_changed_and_deleted(app, client, admin):
    in_west, in_east, outside = book_at(client, *IN_WEST), book_at(client, *IN_EAST), book_at(client, *OUTSIDE)
    delivered = book_at(client, *IN_WEST)
    with app.app_context():
        for status in ("Picked Up", "In Transit", "Out for Delivery", "Delivered"):
            record_status_change(delivered, status, "Kochi", None, actor="ops")
        db.session.commit()
    assert {zone_of(app, t) for t in (in_west, in_east, outside, delivered)} == {None}

    created = post_zone(client, admin, {"name": "West", "geometry": WEST})
    west = created.get_json()["id"]
    assert created.get_json()["parcels_moved"] == 1 and created.get_json()["parcels_open"] == 1
    assert (zone_of(app, in_west), zone_of(app, delivered), zone_of(app, outside)) == (west, None, None)
    east = make_zone(client, admin, "East", EAST)
    assert zone_of(app, in_east) == east

    # West grows over East: East is older? No, West is (lower id), so the overlap is West's now.
    grown = post_zone(client, admin, {"geometry": square(76.20, 9.90, 76.36, 10.05)}, f"/admin/zones/{west}")
    assert grown.status_code == 200 and grown.get_json()["parcels_moved"] == 1
    assert (zone_of(app, in_west), zone_of(app, in_east)) == (west, west)

    deleted = client.post(f"/admin/zones/{west}/delete", json={}, headers={**admin.headers(), **JSON_ACCEPT})
    assert deleted.status_code == 200
    assert deleted.get_json() == {"id": west, "name": "West", "deleted": True, "parcels_moved": 2}
    assert (zone_of(app, in_west), zone_of(app, in_east)) == (None, east)


def test_parcels_open_counts_only_parcels_not_final(app, client, admin):
    west = make_zone(client, admin, "West", WEST)
    parcels = [book_at(client, *IN_WEST) for _ in range(3)]
    with app.app_context():
        record_status_change(parcels[0], "Cancelled", "Kochi", None, actor="ops")
        db.session.commit()
        assert zone_service.open_parcel_counts() == {west: 2}
    body = client.get("/admin/zones", headers=JSON_ACCEPT).get_json()
    assert body["features"][0]["properties"]["parcels_open"] == 2


# --- the JSON --------------------------------------------------------------------------------------------------------

def test_zones_are_served_as_a_geojson_feature_collection(app, client, admin):
    west = make_zone(client, admin, "West", WEST, hub={"lat": 9.96, "lon": 76.24})
    east = make_zone(client, admin, "East", EAST)
    book_at(client, *IN_EAST)
    for request in ({"headers": JSON_ACCEPT}, {"query_string": {"format": "geojson"}, "headers": HTML}):
        response = client.get("/admin/zones", **request)
        assert response.status_code == 200 and response.mimetype == "application/geo+json"
        body = json.loads(response.data)
        assert body["type"] == "FeatureCollection"
        assert [feature["properties"] for feature in body["features"]] == [
            {"id": west, "name": "West", "hub": {"lat": 9.96, "lon": 76.24}, "parcels_open": 0},
            {"id": east, "name": "East", "hub": None, "parcels_open": 1}]
        assert body["features"][0]["geometry"] == WEST and body["features"][0]["type"] == "Feature"
    one = client.get(f"/admin/zones/{west}", headers=JSON_ACCEPT).get_json()
    assert (one["name"], one["geometry"], one["hub"], one["updated_by"]) == ("West", WEST, {"lat": 9.96, "lon": 76.24},
                                                                          "boss")


def test_an_update_changes_only_what_it_names(app, client, admin):
    west = make_zone(client, admin, "West", WEST, hub={"lat": 9.96, "lon": 76.24})
    renamed = post_zone(client, admin, {"name": "Fort Kochi"}, f"/admin/zones/{west}").get_json()
    assert (renamed["name"], renamed["geometry"], renamed["hub"]) == ("Fort Kochi", WEST, {"lat": 9.96, "lon": 76.24})
    no_hub = post_zone(client, admin, {"hub": None}, f"/admin/zones/{west}").get_json()
    assert no_hub["hub"] is None and no_hub["name"] == "Fort Kochi"
    same = post_zone(client, admin, {"name": "Fort Kochi", "geometry": WEST}, f"/admin/zones/{west}")
    assert same.status_code == 200
    assert [row.details["changed"] for row in audit_rows(app, "zone_updated")] == [
        {"name": {"from": "West", "to": "Fort Kochi"}}, {"hub": {"from": True, "to": False}}]


def test_every_change_is_audited_without_the_outline(app, client, admin):
    west = make_zone(client, admin, "West", WEST, hub={"lat": 9.96, "lon": 76.24})
    post_zone(client, admin, {"geometry": EAST}, f"/admin/zones/{west}")
    client.post(f"/admin/zones/{west}/delete", json={}, headers=admin.headers())
    (created,), (updated,), (deleted,) = (audit_rows(app, action) for action in
                                          ("zone_created", "zone_updated", "zone_deleted"))
    assert (created.actor, created.target_type, created.target_id) == ("boss", "zone", str(west))
    assert created.details == {"name": "West", "polygons": 1, "points": 5, "hub": True, "parcels_moved": 0}
    assert updated.details == {"name": "West", "changed": {"geometry": {"polygons": 1, "points": 5}},
                               "parcels_moved": 0}
    assert deleted.details == {"name": "West", "parcels_moved": 0}
    assert "76.2" not in json.dumps([created.details, updated.details, deleted.details])


@pytest.mark.one_database
def test_an_unknown_zone_is_a_404(client, admin):
    for method, url in (("get", "/admin/zones/99"), ("post", "/admin/zones/99"), ("post", "/admin/zones/99/delete")):
        response = getattr(client, method)(url, json={"name": "x"} if method == "post" else None,
                                           headers={**admin.headers(), **JSON_ACCEPT})
        assert response.status_code == 404, (method, url)


@pytest.mark.one_database
def test_a_large_outline_fits_in_a_request(app, client, admin):
    ring = [[76.2 + 0.1 * i / 5000, 9.9] for i in range(5000)] + [[76.3, 10.0], [76.2, 10.0], [76.2, 9.9]]
    body = {"name": "Detailed", "geometry": {"type": "Polygon", "coordinates": [ring]}}
    assert len(json.dumps(body)) > 64 * 1024
    assert post_zone(client, admin, body).status_code == 201


# --- who may, and CSRF -----------------------------------------------------------------------------------------------

@pytest.mark.one_database
@pytest.mark.parametrize("role, reads, writes", [
    ("viewer", 403, 403), ("courier", 403, 403), ("operator", 200, 403), ("admin", 200, 201)])
def test_operators_read_zones_and_only_admins_change_them(app, client, auth, role, reads, writes):
    auth.login(f"{role}1", role=role)
    assert client.get("/admin/zones", headers=JSON_ACCEPT).status_code == reads
    assert client.get("/admin/zones", headers=HTML).status_code == reads
    response = post_zone(client, auth, {"name": "West", "geometry": WEST})
    assert response.status_code == writes
    assert zone_count(app) == (1 if writes == 201 else 0)


@pytest.mark.one_database
def test_without_a_session_it_is_401_and_without_the_csrf_token_400(app, client, auth):
    assert client.get("/admin/zones", headers=JSON_ACCEPT).status_code == 401
    assert client.post("/admin/zones", json={"name": "West", "geometry": WEST}).status_code == 401
    auth.login("boss", role="admin")
    response = client.post("/admin/zones", json={"name": "West", "geometry": WEST}, headers=JSON_ACCEPT)
    assert response.status_code == 400 and "CSRF" in response.get_json()["error"]
    west = make_zone(client, auth, "West", WEST)
    for url in (f"/admin/zones/{west}", f"/admin/zones/{west}/delete"):
        assert client.post(url, json={"name": "East"}, headers=JSON_ACCEPT).status_code == 400
    assert zone_count(app) == 1 and len(audit_rows(app, "zone_created")) == 1
    assert audit_rows(app, "zone_updated") == audit_rows(app, "zone_deleted") == []


# --- the pages -------------------------------------------------------------------------------------------------------

@pytest.mark.one_database  # what the pages show: the JSON tests cover the writes on both
def test_the_page_draws_each_zone_and_lets_an_admin_add_one_by_pasting_geojson(app, client, admin):
    page = client.get("/admin/zones", headers=HTML)
    assert page.status_code == 200 and "No zones yet." in page.get_data(as_text=True)
    form = {"csrf_token": csrf_from(page), "name": "West", "geometry": json.dumps(WEST), "hub_lat": "9.96",
            "hub_lon": "76.24"}
    added = client.post("/admin/zones", data=form, headers=HTML)
    assert added.status_code == 302 and added.headers["Location"].endswith("/admin/zones")
    html = client.get("/admin/zones", headers=HTML).get_data(as_text=True)
    assert "Zone West added: 0 open parcels placed in it." in html
    assert html.count('<path class="zone-map__outline" d="M') == 2  # the overview and the zone's own
    assert '<circle class="zone-map__hub"' in html and "Hub: 9.96000, 76.24000" in html
    assert 'aria-current="page">Zones</a>' in html

    refused = client.post("/admin/zones", data={**form, "name": "East", "geometry": '{"type": "Polygon"'},
                          headers=HTML)
    assert refused.status_code == 400
    text = refused.get_data(as_text=True)
    assert "The zone was not added" in text and "Not GeoJSON: the text is not valid JSON." in text
    assert zone_count(app) == 1


@pytest.mark.one_database  # what the pages show: the JSON tests cover the writes on both
def test_the_zone_page_edits_and_deletes_after_asking(app, client, admin):
    west = make_zone(client, admin, "West", WEST)
    page = client.get(f"/admin/zones/{west}", headers=HTML)
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Change the zone" in html and "[76.28,10.05]" in html
    token = csrf_from(page)
    saved = client.post(f"/admin/zones/{west}", headers=HTML,
                        data={"csrf_token": token, "name": "Fort", "geometry": json.dumps(WEST), "hub_lat": "",
                              "hub_lon": ""})
    assert saved.status_code == 302
    question = client.get(f"/admin/zones/{west}/delete", headers=HTML)
    assert question.status_code == 200 and "Are you sure you want to delete zone Fort?" in question.get_data(
        as_text=True)
    unconfirmed = client.post(f"/admin/zones/{west}/delete", data={"csrf_token": token}, headers=HTML)
    assert unconfirmed.status_code == 200 and zone_count(app) == 1
    gone = client.post(f"/admin/zones/{west}/delete", data={"csrf_token": token, "confirm": "yes"}, headers=HTML)
    assert gone.status_code == 302 and zone_count(app) == 0


@pytest.mark.one_database
def test_an_operator_sees_the_zones_without_the_forms(app, client, auth):
    auth.login("boss", role="admin")
    west = make_zone(client, auth, "West", WEST)
    auth.logout()
    auth.login("ravi", role="operator")
    html = client.get("/admin/zones", headers=HTML).get_data(as_text=True)
    assert "West" in html and "New zone" not in html and 'action="/admin/zones"' not in html
    detail = client.get(f"/admin/zones/{west}", headers=HTML).get_data(as_text=True)
    assert "Outline of West" in detail and "Change the zone" not in detail and "Delete zone" not in detail


@pytest.mark.one_database
def test_an_app_process_starts_without_loading_the_geometry_and_solver_libraries():
    """shapely and numpy load when a zone is first met, VROOM and pandas when a run is planned: a web worker that
    never meets them does not pay their start-up time and memory."""
    code = ("import sys; from app import create_app; from app.config import TestingConfig; "
            "create_app(TestingConfig('sqlite://')); "
            "print(sorted(m for m in ('numpy', 'shapely', 'pandas', 'vroom') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parent.parent, check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"
