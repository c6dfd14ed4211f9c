"""Each parcel placed on the map: the booker's exact point through every door, else the PIN code's centroid, else
none; its zone; delivery windows; what staff and the public see; corrections; the `points.geocode` job against
local stand-ins for Nominatim and Amazon Location (moto has no `location` service); a courier's delivery
position kept for the next parcel to the same address."""
from __future__ import annotations

import io
import json
import threading
import urllib.parse
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select, update

from app.domain.points import address_key, normalised_address
from app.domain.timeutil import isoformat_z, utcnow
from app.extensions import db
from app.jobs.registry import JOBS
from app.jobs.runner import JobRunner
from app.models import AuditEntry, CourierPosition, GeocodeCacheEntry, Shipment
from app.services.planning.geocoders import (
    AmazonLocationGeocoder,
    GeocoderMisconfigured,
    GeocoderUnavailable,
    NominatimGeocoder,
    open_geocoder,
)
from app.services.shipments.pincodes import pincode_centroid
from app.services.shipments.status_changes import record_status_change
from tests.api_support import bearer
from tests.conftest import VALID_BOOKING
from tests.field_support import Field
from tests.test_public_privacy import csrf_from
from tests.test_zones import JSON_ACCEPT, WEST, post_zone

HTML = {"Accept": "text/html"}
POINT = {"destination_lat": 9.95, "destination_lon": 76.22}  # inside WEST
KOCHI = {"destination": "12 MG Road, Kochi 682016"}
CENTROID = pincode_centroid("682016")  # (9.9858, 76.2862): east of WEST
GEOCODE = next(job for job in JOBS if job.name == "points.geocode")
LOCAL = ZoneInfo("Asia/Kolkata")


@pytest.fixture
def operator(auth):
    auth.login("ravi.ops", role="operator")
    return auth


@pytest.fixture
def west(client, auth):
    """The zone WEST, made by an admin (who signs out again)."""
    auth.login("boss", role="admin")
    response = post_zone(client, auth, {"name": "West", "geometry": WEST})
    assert response.status_code == 201
    auth.logout()
    return response.get_json()["id"]


def book(client, **fields) -> str:
    response = client.post("/create", json={**VALID_BOOKING, **fields})
    assert response.status_code == 201, response.get_json()
    return response.get_json()["tracking_id"]


def stored(app, tracking_id: str) -> Shipment:
    with app.app_context():
        shipment = db.session.scalars(select(Shipment).where(Shipment.tracking_id == tracking_id)).one()
        db.session.expunge(shipment)
        return shipment


def placed(app, tracking_id: str) -> tuple:
    shipment = stored(app, tracking_id)
    return shipment.destination_lat, shipment.destination_lon, shipment.destination_precision, shipment.zone_id


def shipment_count(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(Shipment))


def window(hours_from: float, hours_to: float, *, zone=UTC) -> dict:
    now = utcnow()
    return {"from": (now + timedelta(hours=hours_from)).astimezone(zone).isoformat(timespec="seconds"),
            "to": (now + timedelta(hours=hours_to)).astimezone(zone).isoformat(timespec="seconds")}


# --- the booker's point, on every door -------------------------------------------------------------------------------

def test_a_point_given_on_the_form_is_exact_and_placed_in_its_zone(app, client, west):
    form = {**VALID_BOOKING, **KOCHI, "destination_lat": "9.95", "destination_lon": " 76.22 ",
            "csrf_token": csrf_from(client.get("/", headers=HTML))}
    response = client.post("/create", data=form, headers=HTML)
    assert response.status_code == 302
    tracking_id = response.headers["Location"].split("/track/")[1].split("?")[0]
    assert placed(app, tracking_id) == (9.95, 76.22, "exact", west)


def test_a_point_given_as_json_is_exact(app, client, west):
    assert placed(app, book(client, **KOCHI, **POINT)) == (9.95, 76.22, "exact", west)


def test_a_point_given_to_the_api_is_exact_and_answered(app, client, west, issue_key):
    secret = issue_key()
    response = client.post("/api/v1/shipments", json={**VALID_BOOKING, **KOCHI, **POINT}, headers=bearer(secret))
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["destination_point"] == {"lat": 9.95, "lon": 76.22, "precision": "exact"}
    assert body["zone"] == {"id": west, "name": "West"} and body["delivery_window"] is None
    assert placed(app, body["tracking_id"]) == (9.95, 76.22, "exact", west)


def test_points_and_windows_in_a_csv_import(app, client, west, operator):
    tomorrow = (utcnow() + timedelta(days=1)).astimezone(LOCAL).date()
    csv = ("sender_name,receiver_name,mobile,destination,destination_lat,destination_lon,window_from,window_to\n"
           f'Asha Rao,Vikram Nair,9876543210,"12 MG Road, Kochi 682016",9.95,76.22,{tomorrow}T10:00,{tomorrow}T13:00\n'
           'Asha Rao,Meera Iyer,9876543211,"4 Park Street, Kochi 682016",,,,\n')
    response = client.post("/admin/imports", data={"file": (io.BytesIO(csv.encode()), "b.csv")},
                           headers=operator.headers(), content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    exact, centroid = response.get_json()["tracking_ids"]
    assert placed(app, exact) == (9.95, 76.22, "exact", west)
    assert placed(app, centroid) == (*CENTROID, "pincode", None)
    shipment = stored(app, exact)
    ten = datetime.combine(tomorrow, datetime.min.time().replace(hour=10), LOCAL)
    assert shipment.window_from == ten.astimezone(UTC)
    assert shipment.window_to == (ten + timedelta(hours=3)).astimezone(UTC)


@pytest.mark.one_database
def test_a_bad_point_in_a_csv_row_books_nothing(app, client, operator):
    csv = ("sender_name,receiver_name,mobile,destination,destination_lat,destination_lon\n"
           "Asha Rao,Vikram Nair,9876543210,Kochi,9.95,\n"
           "Asha Rao,Vikram Nair,9876543210,Kochi,95,76.2\n")
    response = client.post("/admin/imports", data={"file": (io.BytesIO(csv.encode()), "b.csv")},
                           headers=operator.headers(), content_type="multipart/form-data")
    assert response.status_code == 400
    assert response.get_json()["rows"] == [
        {"line": 2, "fields": {"destination_lon": "Give both the latitude and the longitude, or neither."}},
        {"line": 3, "fields": {"destination_lat": "Must be from -90 to 90."}}]
    assert shipment_count(app) == 0


# --- placed without a point ------------------------------------------------------------------------------------------

def test_without_a_point_the_pin_codes_centroid_places_it(app, client, west):
    by_field = book(client, destination="12 MG Road, Kochi", destination_pincode="682016")
    from_text = book(client, **KOCHI)
    assert placed(app, by_field) == placed(app, from_text) == (*CENTROID, "pincode", None)
    # A PIN code whose centroid lies in a zone is placed in it.
    with app.app_context():
        zone_of_west_pin = pincode_centroid("682001")  # (9.9656, 76.2414): inside WEST
    assert placed(app, book(client, destination="Fort Kochi 682001")) == (*zone_of_west_pin, "pincode", west)


def test_without_a_pin_code_there_is_no_point_and_no_zone(app, client, west):
    assert placed(app, book(client, destination="Kochi")) == (None, None, None, None)


@pytest.mark.one_database
@pytest.mark.parametrize("sent, fields", [
    ({"destination_lat": 9.95}, {"destination_lon": "Give both the latitude and the longitude, or neither."}),
    ({"destination_lon": 76.22}, {"destination_lat": "Give both the latitude and the longitude, or neither."}),
    ({"destination_lat": "north", "destination_lon": 76.22},
     {"destination_lat": "Enter the latitude as a number, such as 9.9312."}),
    ({"destination_lat": 91, "destination_lon": 76.22}, {"destination_lat": "Must be from -90 to 90."}),
    ({"destination_lat": 9.95, "destination_lon": -180.5}, {"destination_lon": "Must be from -180 to 180."}),
    ({"destination_lat": "NaN", "destination_lon": 76.22},
     {"destination_lat": "Enter the latitude as a number, such as 9.9312."}),
    ({"destination_lat": True, "destination_lon": 76.22}, {"destination_lat": "Must be a number."}),
])
def test_a_bad_point_is_a_400_naming_it_and_nothing_is_written(app, client, sent, fields):
    response = client.post("/create", json={**VALID_BOOKING, **sent})
    assert response.status_code == 400 and response.get_json()["fields"] == fields
    assert shipment_count(app) == 0


@pytest.mark.one_database
def test_the_api_refuses_a_bad_point_by_its_schema_or_its_rules(app, client, issue_key):
    headers = bearer(issue_key())
    out_of_range = client.post("/api/v1/shipments", json={**VALID_BOOKING, "destination_lat": 91.0,
                                                          "destination_lon": 76.2}, headers=headers)
    assert out_of_range.status_code == 400 and "destination_lat" in out_of_range.get_json()["errors"]
    half = client.post("/api/v1/shipments", json={**VALID_BOOKING, "destination_lat": 9.95}, headers=headers)
    assert half.status_code == 400 and half.get_json()["errors"] == {
        "destination_lon": "Give both the latitude and the longitude, or neither."}
    assert shipment_count(app) == 0


@pytest.mark.one_database
def test_the_form_shows_a_bad_point_beside_its_field(app, client):
    form = {**VALID_BOOKING, "destination_lat": "91", "destination_lon": "76.2",
            "csrf_token": csrf_from(client.get("/", headers=HTML))}
    page = client.post("/create", data=form, headers=HTML)
    assert page.status_code == 400
    html = page.get_data(as_text=True)
    assert "Must be from -90 to 90." in html and '<details class="form-section" id="delivery-section" open>' in html
    assert shipment_count(app) == 0


# --- delivery windows ------------------------------------------------------------------------------------------------

def test_a_delivery_window_is_stored_in_utc_and_answered_to_staff(app, client, operator):
    sent = window(2, 5, zone=LOCAL)
    tracking_id = book(client, delivery_window=sent)
    shipment = stored(app, tracking_id)
    assert (shipment.window_from, shipment.window_to) == (datetime.fromisoformat(sent["from"]),
                                                          datetime.fromisoformat(sent["to"]))
    body = client.get(f"/admin/shipments/{tracking_id}", headers=JSON_ACCEPT).get_json()
    assert body["delivery_window"] == {"from": isoformat_z(shipment.window_from), "to": isoformat_z(shipment.window_to)}
    assert body["delivery_window"]["from"].endswith("Z")


@pytest.mark.one_database
@pytest.mark.parametrize("sent, message", [
    (window(5, 2), "to: Must be after the start of the window."),
    (window(3, 3), "to: Must be after the start of the window."),
    (window(-5, -1), "to: Must be in the future."),
    (window(24, 24 * 15), "to: At most 14 days ahead."),
    ({"from": window(1, 2)["from"]}, "to: Give both ends of the delivery window, or neither."),
    ({"to": window(1, 2)["to"]}, "from: Give both ends of the delivery window, or neither."),
    ({"from": "2026-12-08T10:00", "to": "2026-12-08T12:00+05:30"},
     "from: Give the time with its offset from UTC, such as 2026-12-08T10:00+05:30."),
    ({"from": "tomorrow at ten", "to": window(1, 2)["to"]},
     "from: Must be a date and time, such as 2026-12-08T10:00+05:30."),
    ({"from": 1765000000, "to": window(1, 2)["to"]}, "from: Must be a date and time, such as 2026-12-08T10:00+05:30."),
    ({**window(1, 2), "timezone": "IST"}, 'Must be an object {"from", "to"} of two ISO 8601 times.'),
])
def test_a_bad_delivery_window_is_a_400_and_nothing_is_written(app, client, sent, message):
    response = client.post("/create", json={**VALID_BOOKING, "delivery_window": sent})
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["fields"] == {"delivery_window": message}
    assert shipment_count(app) == 0


@pytest.mark.one_database
def test_a_window_is_one_object_or_two_fields_never_both(app, client):
    not_object = client.post("/create", json={**VALID_BOOKING, "delivery_window": "10:00-13:00"})
    assert not_object.status_code == 400 and not_object.get_json()["fields"] == {"delivery_window": "Must be a JSON "
                                                                                                     "object."}
    both = client.post("/create", json={**VALID_BOOKING, "delivery_window": window(1, 2),
                                        "window_from": window(1, 2)["from"], "window_to": window(1, 2)["to"]})
    assert both.status_code == 400 and both.get_json()["fields"] == {
        "delivery_window": "Send delivery_window, or window_from and window_to: not both."}
    assert shipment_count(app) == 0


def test_the_form_reads_a_window_in_local_time(app, client):
    tomorrow = (utcnow() + timedelta(days=1)).astimezone(LOCAL).date()
    form = {**VALID_BOOKING, "window_from": f"{tomorrow}T09:30", "window_to": f"{tomorrow}T12:00",
            "csrf_token": csrf_from(client.get("/", headers=HTML))}
    response = client.post("/create", data=form, headers=HTML)
    assert response.status_code == 302
    shipment = stored(app, response.headers["Location"].split("/track/")[1].split("?")[0])
    assert shipment.window_from == datetime(tomorrow.year, tomorrow.month, tomorrow.day, 4, 0, tzinfo=UTC)
    assert shipment.window_to == datetime(tomorrow.year, tomorrow.month, tomorrow.day, 6, 30, tzinfo=UTC)


@pytest.mark.one_database
def test_the_form_refuses_half_a_window_beside_its_field(app, client):
    form = {**VALID_BOOKING, "window_from": "2030-01-01T10:00",
            "csrf_token": csrf_from(client.get("/", headers=HTML))}
    page = client.post("/create", data=form, headers=HTML)
    assert page.status_code == 400 and "Give both ends of the delivery window, or neither." in page.get_data(
        as_text=True)


def test_the_api_takes_a_window_object_and_refuses_a_bad_one(app, client, issue_key):
    headers = bearer(issue_key())
    sent = window(2, 4, zone=LOCAL)
    good = client.post("/api/v1/shipments", json={**VALID_BOOKING, "delivery_window": sent}, headers=headers)
    assert good.status_code == 201, good.get_json()
    assert good.get_json()["delivery_window"] == {"from": isoformat_z(datetime.fromisoformat(sent["from"])),
                                                  "to": isoformat_z(datetime.fromisoformat(sent["to"]))}
    backwards = client.post("/api/v1/shipments", json={**VALID_BOOKING, "delivery_window": window(4, 2)},
                            headers=headers)
    assert backwards.status_code == 400 and backwards.get_json()["errors"] == {
        "delivery_window": "to: Must be after the start of the window."}
    naive = client.post("/api/v1/shipments", json={**VALID_BOOKING, "delivery_window": {
        "from": "2030-01-01T10:00:00", "to": "2030-01-01T12:00:00"}}, headers=headers)
    assert naive.status_code == 400 and "delivery_window.from" in naive.get_json()["errors"]
    assert shipment_count(app) == 1


# --- who sees it -----------------------------------------------------------------------------------------------------

def test_staff_answers_carry_point_zone_and_window_and_public_ones_do_not(app, client, west, operator, issue_key):
    tracking_id = book(client, **KOCHI, **POINT, delivery_window=window(2, 5))
    expected_point = {"lat": 9.95, "lon": 76.22, "precision": "exact"}
    staff = client.get(f"/admin/shipments/{tracking_id}", headers=JSON_ACCEPT).get_json()
    api = client.get(f"/api/v1/shipments/{tracking_id}", headers=bearer(issue_key())).get_json()
    updated = client.post(f"/update/{tracking_id}", json={"status": "Picked Up", "location": "Kochi Hub"},
                          headers={**operator.headers(), **JSON_ACCEPT}).get_json()
    for body in (staff, api, updated):
        assert body["destination_point"] == expected_point and body["zone"] == {"id": west, "name": "West"}
        assert set(body["delivery_window"]) == {"from", "to"}
    listed = client.get("/api/v1/shipments", headers=bearer(issue_key("lister"))).get_json()["shipments"]
    assert listed[0]["zone"] == {"id": west, "name": "West"}

    operator.logout()
    public = {"tracking JSON": client.get(f"/track/{tracking_id}"),
              "tracking page": client.get(f"/track/{tracking_id}", headers=HTML),
              "search JSON": client.get("/search/9876543210"),
              "search page": client.get("/search/9876543210", headers=HTML)}
    for what, response in public.items():
        text = response.get_data(as_text=True)
        assert response.status_code == 200, what
        for private in ("destination_point", "delivery_window", "9.95", "76.22", "West", "precision"):
            assert private not in text, (what, private)


@pytest.mark.one_database
def test_the_staff_page_says_where_and_in_which_zone(app, client, west, operator):
    tracking_id = book(client, **KOCHI, **POINT)
    html = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert "Point: 9.95000, 76.22000 (exact)" in html and "Zone: West" in html and "Any time" in html
    plain = book(client, destination="Kochi")
    html = client.get(f"/admin/shipments/{plain}", headers=HTML).get_data(as_text=True)
    assert "No point" in html and "No zone" in html


# --- corrections -----------------------------------------------------------------------------------------------------

def edit(client, auth, tracking_id: str, **changes):
    return client.post(f"/admin/shipments/{tracking_id}/edit", json=changes, headers={**auth.headers(), **JSON_ACCEPT})


def test_a_correction_places_the_parcel_again(app, client, west, operator):
    tracking_id = book(client, destination="Kochi")
    assert placed(app, tracking_id)[2] is None

    by_pin = edit(client, operator, tracking_id, destination_pincode="682016")
    assert by_pin.status_code == 200 and by_pin.get_json()["changed"] == ["destination_pincode"]
    assert placed(app, tracking_id) == (*CENTROID, "pincode", None)

    exact = edit(client, operator, tracking_id, destination_lat="9.95", destination_lon="76.22")
    assert exact.get_json()["changed"] == ["destination_lat", "destination_lon"]
    assert placed(app, tracking_id) == (9.95, 76.22, "exact", west)
    # The address alone moves no exact point; a new PIN code does.
    edit(client, operator, tracking_id, destination="14 Beach Road, Kochi")
    assert placed(app, tracking_id)[2] == "exact"
    edit(client, operator, tracking_id, destination_pincode="682001")
    assert placed(app, tracking_id) == (*pincode_centroid("682001"), "pincode", west)
    edit(client, operator, tracking_id, destination_lat=9.95, destination_lon=76.22)
    cleared = edit(client, operator, tracking_id, destination_lat=None, destination_lon=None)
    assert cleared.status_code == 200 and cleared.get_json()["destination_point"]["precision"] == "pincode"

    with app.app_context():
        details = [row.details for row in db.session.scalars(
            select(AuditEntry).where(AuditEntry.action == "shipment_edited").order_by(AuditEntry.id))]
    assert details[0]["destination_point"] == {"from": None, "to": "9.985800, 76.286200 (pincode)"}
    assert details[1]["destination_lat"] == {"from": "9.985800", "to": "9.950000"}
    assert "destination_point" not in details[1]


@pytest.mark.one_database
def test_half_a_point_in_a_correction_is_a_400_and_a_fixed_point_a_409(app, client, operator):
    tracking_id = book(client, **KOCHI)
    half = edit(client, operator, tracking_id, destination_lat=9.95)
    assert half.status_code == 400 and half.get_json()["fields"] == {
        "destination_lon": "Give both the latitude and the longitude, or neither."}
    with app.app_context():
        for status in ("Picked Up", "In Transit", "Out for Delivery"):
            record_status_change(tracking_id, status, "Kochi", None, actor="ops")
        db.session.commit()
    fixed = edit(client, operator, tracking_id, destination_lat=9.95, destination_lon=76.22)
    assert fixed.status_code == 409 and set(fixed.get_json()["fixed"]) == {"destination_lat", "destination_lon"}
    assert placed(app, tracking_id) == (*CENTROID, "pincode", None)


# --- the geocoder job, against a local Nominatim ----------------------------------------------------------------------

class StandIn:
    """A tiny HTTP server on 127.0.0.1 answering from `answers` (path → (status, JSON body)), keeping each request
    (path, query, headers, body)."""

    def __init__(self, answer) -> None:
        self.answer, self.requests = answer, []
        stand_in = self

        class Handler(BaseHTTPRequestHandler):
            def _reply(self, body: bytes | None = None) -> None:
                url = urllib.parse.urlsplit(self.path)
                stand_in.requests.append((url.path, urllib.parse.parse_qs(url.query), dict(self.headers), body))
                status, reply = stand_in.answer(url.path, urllib.parse.parse_qs(url.query), body)
                data = json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                self._reply()

            def do_POST(self) -> None:  # noqa: N802
                self._reply(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))

            def log_message(self, *args) -> None:
                pass  # the queries hold addresses: nothing in the test logs

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> StandIn:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


GEOCODED = (9.9683, 76.2441)  # inside WEST, within 30 km of 682016's centroid
# What the stand-in knows, by the query's normalised text (a geocoder reads "M.G." as "MG" too).
PLACES = {normalised_address("12 MG Road, Kochi 682016, India"): [{"lat": "9.9683", "lon": "76.2441"}],
          normalised_address("1 Janpath, Kochi 682016, India"): [{"lat": "28.6139", "lon": "77.2090"}]}  # Delhi


def nominatim(path, query, _body):
    if path != "/search":
        return 404, {}
    return 200, PLACES.get(normalised_address(query["q"][0]), [])


def run_geocoder(app, now=None):
    (run,) = JobRunner(app, jobs=[GEOCODE]).run_due(now or utcnow())
    return run


def cache_rows(app) -> list[tuple]:
    with app.app_context():
        return [(row.key, row.provider, row.lat, row.lon)
                for row in db.session.scalars(select(GeocodeCacheEntry).order_by(GeocodeCacheEntry.provider,
                                                                                 GeocodeCacheEntry.key))]


def test_the_job_refines_pincode_points_from_nominatim_once_per_address(app, client, west):
    with StandIn(nominatim) as stand_in:
        app.config.update(GEOCODER="nominatim", GEOCODER_URL=stand_in.url, GEOCODE_POLL_SECONDS=60)
        first = book(client, **KOCHI)
        again = book(client, destination="12, m.g. ROAD,  Kochi 682016")  # the same address, typed otherwise
        unknown = book(client, destination="7 Nowhere Lane, Kochi 682016")
        implausible = book(client, destination="1 Janpath, Kochi 682016")
        exact = book(client, **KOCHI, destination_lat=9.99, destination_lon=76.3)
        no_pin = book(client, destination="Kochi")

        run = run_geocoder(app)
        assert (run.outcome, run.detail) == ("done", "refined 2 parcel point(s), looked up 3 address(es)")
        assert placed(app, first) == placed(app, again) == (*GEOCODED, "geocoded", west)
        for tracking_id in (unknown, implausible):
            assert placed(app, tracking_id) == (*CENTROID, "pincode", None)
        assert placed(app, exact) == (9.99, 76.3, "exact", None)
        assert placed(app, no_pin) == (None, None, None, None)

        assert len(stand_in.requests) == 3
        path, query, headers, _ = stand_in.requests[0]
        assert path == "/search" and query["format"] == ["jsonv2"] and query["countrycodes"] == ["in"]
        assert query["limit"] == ["1"] and headers["User-Agent"].startswith("Waybill/")
        # Keyed by a hash, never the address; misses are kept too.
        assert cache_rows(app) == sorted([
            (address_key("12 MG Road, Kochi 682016", "682016"), "nominatim", *GEOCODED),
            (address_key("7 Nowhere Lane, Kochi 682016", "682016"), "nominatim", None, None),
            (address_key("1 Janpath, Kochi 682016", "682016"), "nominatim", None, None)])

        # The next run asks nothing again; a new booking to a known address is refined from the cache alone.
        later = book(client, destination="12 MG Road Kochi 682016")
        run = run_geocoder(app, utcnow() + timedelta(minutes=2))
        assert (run.outcome, run.detail) == ("done", "refined 1 parcel point(s), looked up 0 address(es)")
        assert len(stand_in.requests) == 3 and placed(app, later)[2] == "geocoded"
        assert run_geocoder(app, utcnow() + timedelta(minutes=4)).outcome == "idle"


def test_a_geocoder_that_cannot_answer_stops_the_run_and_keeps_nothing(app, client):
    with StandIn(lambda *_: (503, {"error": "busy"})) as stand_in:
        app.config.update(GEOCODER="nominatim", GEOCODER_URL=stand_in.url, GEOCODE_POLL_SECONDS=60)
        tracking_id = book(client, **KOCHI)
        book(client, destination="7 Nowhere Lane, Kochi 682016")
        run = run_geocoder(app)
        assert (run.outcome, run.detail) == ("done", "refined 0 parcel point(s), looked up 1 address(es); stopped: "
                                                     "Nominatim answered 503")
        assert len(stand_in.requests) == 1 and cache_rows(app) == []
        assert placed(app, tracking_id)[2] == "pincode"


def test_a_misconfigured_geocoder_fails_the_run(app, client):
    app.config.update(GEOCODER="amazon-location", GEOCODER_PLACE_INDEX=None, GEOCODE_POLL_SECONDS=60)
    book(client, **KOCHI)
    run = run_geocoder(app)
    assert run.outcome == "failed" and "GEOCODER_PLACE_INDEX" in run.detail


@pytest.mark.one_database
@pytest.mark.parametrize("settings, error", [
    ({"GEOCODER": "google"}, "GEOCODER must be one of none, nominatim, amazon-location, not 'google'."),
    ({"GEOCODER": "nominatim"}, "GEOCODER=nominatim needs GEOCODER_URL (the Nominatim server)."),
    ({"GEOCODER": "nominatim", "GEOCODER_URL": "ftp://geo.example"}, "GEOCODER_URL must be an http:// or https://"),
    ({"GEOCODER": "amazon-location"}, "GEOCODER=amazon-location needs GEOCODER_PLACE_INDEX"),
])
def test_geocoder_settings_are_checked_when_it_is_opened(settings, error):
    with pytest.raises(GeocoderMisconfigured, match=error.replace("(", r"\(").replace(")", r"\)")):
        open_geocoder(settings)


@pytest.mark.one_database
def test_the_geocoders_the_settings_name(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert open_geocoder({"GEOCODER": "none"}) is None and open_geocoder({}) is None
    assert isinstance(open_geocoder({"GEOCODER": "Nominatim", "GEOCODER_URL": "https://geo.example"}),
                      NominatimGeocoder)
    amazon = open_geocoder({"GEOCODER": "amazon-location", "GEOCODER_PLACE_INDEX": "waybill",
                            "AWS_REGION": "ap-south-1"})
    assert isinstance(amazon, AmazonLocationGeocoder) and amazon.place_index == "waybill"


@pytest.mark.one_database
def test_nominatim_unreachable_is_unavailable():
    with StandIn(nominatim) as stand_in:
        url = stand_in.url
    with pytest.raises(GeocoderUnavailable, match="Nominatim unreachable"):
        NominatimGeocoder(url, timeout=2).locate("12 MG Road, Kochi", "682016")


@pytest.mark.one_database
def test_amazon_location_search_against_a_local_stand_in(monkeypatch):
    """moto has no `location` service: a stand-in answers SearchPlaceIndexForText as the REST API does."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")

    def amazon(path, _query, body):
        if path != "/places/v0/indexes/waybill-places/search/text":
            return 404, {"message": "not found"}
        if body["Text"].startswith("Nowhere"):
            return 200, {"Summary": {"Text": body["Text"], "DataSource": "Esri"}, "Results": []}
        if body["Text"].startswith("Refused"):
            return 403, {"message": "denied"}
        return 200, {"Summary": {"Text": body["Text"], "DataSource": "Esri"},
                     "Results": [{"Place": {"Geometry": {"Point": [76.2441, 9.9683]}}, "Relevance": 0.9}]}

    with StandIn(amazon) as stand_in:
        geocoder = open_geocoder({"GEOCODER": "amazon-location", "GEOCODER_PLACE_INDEX": "waybill-places",
                                  "AWS_REGION": "ap-south-1", "GEOCODER_URL": stand_in.url})
        assert geocoder.locate("12 MG Road, Kochi", "682016") == GEOCODED
        assert geocoder.locate("Nowhere Lane", None) is None
        with pytest.raises(GeocoderUnavailable, match="Amazon Location refused the search"):
            geocoder.locate("Refused Road", None)
        _path, _query, headers, body = stand_in.requests[0]
        assert body == {"Text": "12 MG Road, Kochi 682016, India", "MaxResults": 1, "FilterCountries": ["IND"]}
        assert headers["Authorization"].startswith("AWS4-HMAC-SHA256")


# --- where couriers delivered -----------------------------------------------------------------------------------------

@pytest.fixture
def field(app, client, auth, make_user, create_shipment):
    return Field(app, client, auth, make_user, create_shipment)


def position(app, courier_id: int, at: datetime, lat: float, lon: float, accuracy: float = 8.0) -> None:
    with app.app_context():
        db.session.add(CourierPosition(courier_id=courier_id, at=at, lat=lat, lon=lon, accuracy=accuracy))
        db.session.commit()


DOOR = (9.9701, 76.2452)  # inside WEST, 4.7 km from 682016's centroid


def deliver(field, courier_id: int, tracking_id: str, positions: list[tuple[timedelta, tuple, float]]) -> None:
    """Deliver `tracking_id` as the courier, a minute ago, with positions kept around that time."""
    at = (utcnow() - timedelta(minutes=1)).replace(microsecond=0)
    for offset, (lat, lon), accuracy in positions:
        position(field.app, courier_id, at + offset, lat, lon, accuracy)
    field.assign(courier_id, [tracking_id])
    field.sign_in()
    [result] = field.send(field.event(tracking_id, at=isoformat_z(at)))
    assert result["outcome"] == "applied", result
    field.auth.logout()


def test_a_delivery_keeps_where_the_courier_was_for_the_next_parcel_there(app, field, west):
    courier_id = field.courier()
    parcel = field.parcel(**KOCHI)
    waiting = field.parcel(status="Booked", destination="12 M.G. Road, Kochi 682016")  # booked before
    deliver(field, courier_id, parcel, [(timedelta(seconds=-90), (9.98, 76.30), 5.0),
                                        (timedelta(seconds=20), DOOR, 12.0),
                                        (timedelta(seconds=40), DOOR, 90.0)])  # nearer, but too rough
    assert placed(app, parcel) == (*DOOR, "delivered", west)
    assert cache_rows(app) == [(address_key(KOCHI["destination"], "682016"), "delivered", *DOOR)]

    next_one = field.create_shipment(destination="12 mg road kochi 682016")
    assert placed(app, next_one) == (*DOOR, "delivered", west)
    elsewhere = field.create_shipment(destination="13 MG Road, Kochi 682016")
    assert placed(app, elsewhere) == (*CENTROID, "pincode", None)

    # A parcel booked before the delivery is refined by the job, geocoder or not.
    assert placed(app, waiting)[2] == "pincode"
    app.config.update(GEOCODER="none", GEOCODE_POLL_SECONDS=60)
    run = run_geocoder(app)
    assert (run.outcome, run.detail) == ("done", "refined 1 parcel point(s), looked up 0 address(es)")
    assert placed(app, waiting) == (*DOOR, "delivered", west)


@pytest.mark.parametrize("positions", [
    [],  # no position at all
    [(timedelta(minutes=-3), DOOR, 5.0), (timedelta(minutes=3), DOOR, 5.0)],  # none within 2 minutes
    [(timedelta(seconds=10), DOOR, 51.0)],  # not accurate enough
    [(timedelta(seconds=10), (12.9716, 77.5946), 5.0)],  # Bengaluru: not where a Kochi parcel goes
])
def test_a_delivery_without_a_fresh_accurate_plausible_position_moves_nothing(app, field, positions):
    courier_id = field.courier()
    parcel = field.parcel(**KOCHI)
    deliver(field, courier_id, parcel, positions)
    assert placed(app, parcel) == (*CENTROID, "pincode", None)
    assert cache_rows(app) == []


def test_a_delivered_point_is_used_for_180_days(app, field):
    courier_id = field.courier()
    parcel = field.parcel(**KOCHI)
    deliver(field, courier_id, parcel, [(timedelta(seconds=5), DOOR, 5.0)])
    with app.app_context():
        db.session.execute(update(GeocodeCacheEntry).values(created_at=utcnow() - timedelta(days=181)))
        db.session.commit()
    assert placed(app, field.create_shipment(**KOCHI))[2] == "pincode"
