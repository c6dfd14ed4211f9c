"""The paper's JSON contract through the test client: every route and every error."""
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from sqlalchemy import func, select, text

from app.extensions import db
from app.models import Notification, Shipment, TrackingEvent
from tests.conftest import VALID_BOOKING

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


def row_counts(app):
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(m))
                     for m in (Shipment, TrackingEvent, Notification))


# --- POST /create ---------------------------------------------------------------------------------------

def test_create_returns_201_with_tracking_id_status_and_url(client, app):
    response = client.post("/create", json=VALID_BOOKING)
    assert response.status_code == 201
    body = response.get_json()
    assert set(body) == {"tracking_id", "status", "tracking_url", "charges", "promised_by"}  # for the booker
    assert body["status"] == "Booked" and len(body["tracking_id"]) == 8
    assert body["charges"]["total"] == "88.50" and body["charges"]["zone"] == "national"  # Kochi: no PIN code
    assert body["tracking_url"] == f"http://waybill.test/track/{body['tracking_id']}"
    assert response.headers["Location"].endswith(f"/track/{body['tracking_id']}")
    assert row_counts(app) == (1, 1, 1)


def test_create_stores_normalised_mobile_and_email(client, app):
    tid = client.post("/create", json={**VALID_BOOKING, "mobile": "098765 43210",
                                       "email": "Vikram@Example.COM"}).get_json()["tracking_id"]
    with app.app_context():
        shipment = db.session.scalars(select(Shipment).where(Shipment.tracking_id == tid)).one()
        assert shipment.mobile == "+919876543210"
        assert shipment.email == "Vikram@example.com"


@pytest.mark.parametrize("body, field", [
    ({**VALID_BOOKING, "sender_name": ""}, "sender_name"),
    ({**VALID_BOOKING, "sender_name": "   "}, "sender_name"),
    ({k: v for k, v in VALID_BOOKING.items() if k != "receiver_name"}, "receiver_name"),
    ({**VALID_BOOKING, "mobile": "12345"}, "mobile"),
    ({**VALID_BOOKING, "mobile": "call me maybe"}, "mobile"),
    ({**VALID_BOOKING, "mobile": "080 2222 3333"}, "mobile"),  # a landline
    ({**VALID_BOOKING, "email": "not-an-email"}, "email"),
    ({**VALID_BOOKING, "destination": "x" * 201}, "destination"),
    ({**VALID_BOOKING, "sender_name": "x" * 101}, "sender_name"),
    ({**VALID_BOOKING, "mobile": "9" * 33}, "mobile"),
    ({**VALID_BOOKING, "sender_name": 42}, "sender_name"),
    ({**VALID_BOOKING, "email": ["a@example.com"]}, "email"),
    ({**VALID_BOOKING, "destination": {"city": "Kochi"}}, "destination"),
    ({**VALID_BOOKING, "gift_wrap": "yes"}, "gift_wrap"),  # not a field of a booking
    ({**VALID_BOOKING, "weight_kg": "2 kg"}, "weight_kg"),
])
def test_create_rejects_bad_fields_with_per_field_messages(client, app, body, field):
    response = client.post("/create", json=body)
    assert response.status_code == 400
    payload = response.get_json()
    assert payload["error"] and field in payload["fields"] and payload["fields"][field]
    assert row_counts(app) == (0, 0, 0)


@pytest.mark.parametrize("data, content_type", [
    ("{not json", "application/json"),
    ("[1, 2, 3]", "application/json"),
    ('"a string"', "application/json"),
    ("null", "application/json"),
    ("", "application/json"),
])
def test_create_rejects_bodies_that_are_not_a_json_object(client, app, data, content_type):
    response = client.post("/create", data=data, content_type=content_type)
    assert response.status_code == 400
    assert "JSON" in response.get_json()["error"]
    assert row_counts(app) == (0, 0, 0)


def test_deeply_nested_json_is_a_400_not_a_500(client, app):
    nested = '{"a":' * 5000 + "1" + "}" * 5000
    for path in ["/create", "/search", "/login"]:
        response = client.post(path, data=nested, content_type="application/json")
        assert response.status_code == 400, path
    assert row_counts(app) == (0, 0, 0)


def test_create_rejects_oversize_body_with_413(client, app):
    response = client.post("/create", json={**VALID_BOOKING, "destination": "x" * 100_000})
    assert response.status_code == 413
    assert "error" in response.get_json()
    assert row_counts(app) == (0, 0, 0)


def test_create_form_post_without_csrf_token_is_refused(client, app):
    response = client.post("/create", data=VALID_BOOKING)
    assert response.status_code == 400
    assert "CSRF" in response.get_json()["error"]
    assert row_counts(app) == (0, 0, 0)


def test_create_as_text_plain_is_treated_as_a_form_and_needs_csrf(client, app):
    """A cross-site form can send text/plain that looks like JSON; it must not slip past CSRF."""
    import json
    response = client.post("/create", data=json.dumps(VALID_BOOKING), content_type="text/plain")
    assert response.status_code == 400
    assert row_counts(app) == (0, 0, 0)


def test_wrong_method_is_405_json(client):
    response = client.get("/create")
    assert response.status_code == 405
    assert "error" in response.get_json()


# --- GET /track/<id> ------------------------------------------------------------------------------------

def test_track_returns_summary_and_events_oldest_first(client, create_shipment, auth):
    tid = create_shipment()
    auth.login()
    client.post(f"/update/{tid}", json={"status": "Picked Up", "location": "Kakinada"}, headers=auth.headers())
    auth.logout()
    body = client.get(f"/track/{tid}").get_json()
    assert body["tracking_id"] == tid and body["status"] == "Picked Up"
    assert [e["status"] for e in body["events"]] == ["Booked", "Picked Up"]
    assert body["events"][0]["location"] == "Origin Facility"
    assert body["created_at"].endswith("Z") and all(e["occurred_at"].endswith("Z") for e in body["events"])
    assert body["destination_city"] == "Kochi"
    assert (body["sender"], body["receiver"]) == ("Asha R.", "Vikram N.")


@pytest.mark.parametrize("variant", [str.lower, str.upper, lambda t: f"  {t} ", lambda t: t.lower() + " "])
def test_track_matches_ids_case_insensitively_ignoring_spaces(client, create_shipment, variant):
    tid = create_shipment()
    response = client.get(f"/track/{variant(tid)}")
    assert response.status_code == 200 and response.get_json()["tracking_id"] == tid


@pytest.mark.parametrize("typed", [
    lambda t: f"{t[:4]} {t[4:]}", lambda t: f"{t[:4]}-{t[4:].lower()}", lambda t: " ".join(t),
    lambda t: f"{t[:4]}\t{t[4:]}",
])
def test_track_ignores_spaces_and_hyphens_inside_the_id(client, create_shipment, typed):
    tid = create_shipment()
    response = client.get(f"/track/{quote(typed(tid))}")
    assert response.status_code == 200 and response.get_json()["tracking_id"] == tid
    assert client.get(f"/track/{quote(typed(tid))}", headers=HTML).status_code == 200


def test_track_reads_the_letter_o_as_zero(client, create_shipment, app, monkeypatch):
    from app.services.shipments import booking as shipments
    monkeypatch.setattr(shipments, "new_tracking_id", lambda: "3EE0AF00")
    tid = create_shipment()
    assert tid == "3EE0AF00"
    for typed in ("3EEOAFOO", "3eeo afoo", "3EE0-AFO0"):
        response = client.get(f"/track/{quote(typed)}")
        assert response.status_code == 200 and response.get_json()["tracking_id"] == tid, typed


@pytest.mark.parametrize("tid", ["FFFFFFFF", "nope", "A" * 40, "%27%20OR%201%3D1--"])
def test_track_unknown_id_is_404_json(client, tid):
    response = client.get(f"/track/{tid}")
    assert response.status_code == 404
    assert response.get_json()["error"]


def test_public_track_has_no_email_and_no_full_mobile(client, create_shipment):
    tid = create_shipment()
    text = client.get(f"/track/{tid}").get_data(as_text=True)
    assert "vikram@example.com" not in text
    assert "9876543210" not in text and "98765" not in text
    html = client.get(f"/track/{tid}", headers=HTML).get_data(as_text=True)
    assert "vikram@example.com" not in html and "9876543210" not in html


def test_track_serves_html_to_browsers_and_json_to_api_clients(client, create_shipment):
    tid = create_shipment()
    assert client.get(f"/track/{tid}", headers=HTML).content_type.startswith("text/html")
    assert client.get(f"/track/{tid}", headers={"Accept": "*/*"}).is_json
    assert client.get(f"/track/{tid}", headers={"Accept": "application/json"}).is_json
    assert client.get(f"/track/{tid}").is_json


def test_unknown_id_gives_an_html_404_page_to_browsers(client):
    response = client.get("/track/FFFFFFFF", headers=HTML)
    assert response.status_code == 404 and response.content_type.startswith("text/html")


# --- GET /search/<mobile> -------------------------------------------------------------------------------

def test_search_finds_the_same_shipments_for_every_spelling_newest_first(client, create_shipment):
    older, newer = create_shipment(), create_shipment()
    create_shipment(mobile="+91 90000 00001")
    for spelling in ["+91 98765 43210", "098765 43210", "9876543210", "+919876543210"]:
        body = client.get(f"/search/{spelling}").get_json()
        assert [s["tracking_id"] for s in body["shipments"]] == [newer, older]
    assert body["mobile"].endswith("3210") and "98765" not in body["mobile"]
    assert all(set(s) == {"tracking_id", "status", "updated_at", "destination_city", "tracking_url"}
               for s in body["shipments"])


def test_search_with_no_shipments_is_an_empty_list(client):
    body = client.get("/search/9123456789").get_json()
    assert body["shipments"] == []


@pytest.mark.parametrize("mobile", ["12", "abc", "9" * 40])
def test_search_rejects_what_is_not_a_phone_number(client, mobile):
    response = client.get(f"/search/{mobile}")
    assert response.status_code == 400
    assert "mobile" in response.get_json()["fields"]


def test_search_for_a_landline_is_a_clear_400(client):
    response = client.get("/search/080%202222%203333")
    assert response.status_code == 400
    assert "not a mobile number" in response.get_json()["fields"]["mobile"]


def test_search_form_post_needs_csrf(client, create_shipment, app):
    tracking_id = create_shipment()
    response = client.post("/search", data={"mobile": "9876543210"})
    assert response.status_code == 400 and "CSRF" in response.get_json()["error"]
    assert tracking_id not in response.get_data(as_text=True)  # nothing was looked up …
    assert row_counts(app) == (1, 1, 1)  # … and nothing written


def test_search_as_json_post_keeps_the_number_out_of_the_url(client, create_shipment):
    tid = create_shipment()
    body = client.post("/search", json={"mobile": "098765 43210"}).get_json()
    assert [s["tracking_id"] for s in body["shipments"]] == [tid]
    bad = client.post("/search", json={"mobile": "12"})
    assert bad.status_code == 400 and "mobile" in bad.get_json()["fields"]


# --- POST /update/<id> ----------------------------------------------------------------------------------

def test_update_returns_shipment_with_new_event_for_staff(client, create_shipment, auth, app):
    tid = create_shipment()
    auth.login()
    response = client.post(f"/update/{tid.lower()}", json={"status": "Picked Up", "location": "Kakinada",
                                                           "note": "Parcel collected"}, headers=auth.headers())
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "Picked Up"
    event = dict(body["events"][-1])
    occurred_at = datetime.fromisoformat(event.pop("occurred_at").replace("Z", "+00:00"))
    assert event == {"status": "Picked Up", "location": "Kakinada", "note": "Parcel collected",
                     "customer_message": None, "actor": "operator1"}
    assert abs(datetime.now(UTC) - occurred_at) < timedelta(minutes=1)
    assert body["email"] == "vikram@example.com" and body["mobile"] == "+919876543210"
    assert row_counts(app) == (1, 2, 2)


def test_update_without_session_is_401_json_not_csrf(client, create_shipment, app):
    tid = create_shipment()
    response = client.post(f"/update/{tid}", json={"status": "Picked Up", "location": "X"})
    assert response.status_code == 401
    assert response.get_json() == {"error": "Log in first."}
    assert row_counts(app) == (1, 1, 1)


def test_update_with_session_but_no_csrf_token_is_400_and_changes_nothing(client, create_shipment, auth, app):
    tid = create_shipment()
    auth.login()
    response = client.post(f"/update/{tid}", json={"status": "Picked Up", "location": "X"})
    assert response.status_code == 400 and "CSRF" in response.get_json()["error"]
    bad = client.post(f"/update/{tid}", json={"status": "Picked Up", "location": "X"},
                      headers={"X-CSRFToken": "forged"})
    assert bad.status_code == 400
    assert row_counts(app) == (1, 1, 1)


def test_update_invalid_transition_is_409_naming_allowed_statuses(client, create_shipment, auth, app):
    tid = create_shipment()
    auth.login()
    response = client.post(f"/update/{tid}", json={"status": "Delivered", "location": "X"}, headers=auth.headers())
    assert response.status_code == 409
    body = response.get_json()
    assert body["allowed"] == ["Picked Up", "Cancelled", "On Hold"]
    assert "Picked Up, Cancelled, On Hold" in body["error"]
    assert row_counts(app) == (1, 1, 1)


@pytest.mark.parametrize("body, field", [
    ({"status": "Teleported", "location": "X"}, "status"),
    ({"location": "X"}, "status"),
    ({"status": "Picked Up"}, "location"),
    ({"status": "Picked Up", "location": "   "}, "location"),
    ({"status": "Picked Up", "location": "x" * 121}, "location"),
    ({"status": "Picked Up", "location": "X", "note": "n" * 501}, "note"),
    ({"status": 3, "location": "X"}, "status"),
    ({"status": "Picked Up", "location": ["X"]}, "location"),
    ({"status": "Picked Up", "location": "X", "by": "me"}, "by"),
])
def test_update_bad_body_is_400_with_field_message(client, create_shipment, auth, app, body, field):
    tid = create_shipment()
    auth.login()
    response = client.post(f"/update/{tid}", json=body, headers=auth.headers())
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    assert row_counts(app) == (1, 1, 1)


@pytest.mark.parametrize("data", ["{oops", "[]", "7"])
def test_update_malformed_json_is_400(client, create_shipment, auth, data):
    tid = create_shipment()
    auth.login()
    response = client.post(f"/update/{tid}", data=data, content_type="application/json", headers=auth.headers())
    assert response.status_code == 400


def test_update_unknown_id_is_404(client, auth):
    auth.login()
    response = client.post("/update/FFFFFFFF", json={"status": "Picked Up", "location": "X"}, headers=auth.headers())
    assert response.status_code == 404


def test_admin_may_update_too(client, create_shipment, auth):
    tid = create_shipment()
    auth.login("boss", "correct-horse-1", role="admin")
    response = client.post(f"/update/{tid}", json={"status": "Cancelled", "location": "Desk"}, headers=auth.headers())
    assert response.status_code == 200 and response.get_json()["status"] == "Cancelled"


def test_full_lifecycle_through_the_api(client, create_shipment, auth):
    tid = create_shipment()
    auth.login()
    steps = ["Picked Up", "In Transit", "In Transit", "Out for Delivery", "Delivery Attempted",
             "Out for Delivery", "Delivered"]
    for status in steps:
        response = client.post(f"/update/{tid}", json={"status": status, "location": "Hub"}, headers=auth.headers())
        assert response.status_code == 200, response.get_json()
    events = client.get(f"/track/{tid}").get_json()["events"]
    assert [e["status"] for e in events] == ["Booked", *steps]


# --- health ---------------------------------------------------------------------------------------------

def test_healthz_and_readyz(client):
    assert client.get("/healthz").get_json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.get_json() == {"status": "ok", "database": "ok", "schema": "current"}


def test_readyz_is_503_on_a_database_that_was_never_migrated(tmp_path):
    from app import create_app
    from app.config import TestingConfig

    empty = create_app(TestingConfig(f"sqlite:///{tmp_path / 'empty.db'}"))
    response = empty.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.get_json()["database"] == "ok" and response.get_json()["status"] == "unavailable"
    # What the probe protects against: a booking on this database fails.
    assert empty.test_client().post("/create", json=VALID_BOOKING).status_code == 500


@pytest.mark.parametrize("change, undo", [
    ("UPDATE alembic_version SET version_num = '0001_initial_schema'", None),
    ("ALTER TABLE alembic_version RENAME TO alembic_version_aside",
     "ALTER TABLE alembic_version_aside RENAME TO alembic_version"),
], ids=["older-revision", "no-version-table"])
def test_readyz_is_503_until_the_schema_is_at_the_migrations_head(client, app, change, undo):
    with app.app_context():
        head = db.session.scalar(text("SELECT version_num FROM alembic_version"))
        assert head != "0001_initial_schema"
        db.session.execute(text(change))
        db.session.commit()
    try:
        response = client.get("/readyz")
        assert response.status_code == 503
        assert response.get_json()["database"] == "ok" and "schema" in response.get_json()
        assert client.get("/healthz").status_code == 200
    finally:
        with app.app_context():
            db.session.execute(text(undo or f"UPDATE alembic_version SET version_num = '{head}'"))
            db.session.commit()
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_when_the_database_is_unreachable(make_config):
    from app import create_app
    broken = create_app(make_config(SQLALCHEMY_DATABASE_URI="postgresql+psycopg2://nobody@127.0.0.1:1/none"))
    response = broken.test_client().get("/readyz")
    assert response.status_code == 503
    assert broken.test_client().get("/healthz").status_code == 200


def test_unknown_route_is_404_json(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404 and "error" in response.get_json()
