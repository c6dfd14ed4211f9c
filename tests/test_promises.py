"""Promised dates: the pure rules, the admins' table, every booking door, the API's given day, who sees it."""
from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from app.domain.promises import (
    DEFAULT_PROMISE_DAYS,
    end_of_local_day,
    given_day_problem,
    promise_days_problem,
    promised_by,
)
from app.domain.timeutil import parse_iso_z, to_local, utcnow
from app.extensions import db
from app.models import AuditEntry, PromiseRule, Shipment
from tests.api_support import bearer
from tests.test_public_privacy import csrf_from

HTML = {"Accept": "text/html"}
IST = "Asia/Kolkata"


# --- the pure rules ----------------------------------------------------------------------------------------------

def test_defaults_standard_1_3_5_and_express_one_less_never_below_the_same_day():
    assert DEFAULT_PROMISE_DAYS == {("standard", "local"): 1, ("standard", "state"): 3, ("standard", "national"): 5,
                                    ("express", "local"): 0, ("express", "state"): 2, ("express", "national"): 4}


def test_the_promise_ends_at_the_end_of_the_local_day_counting_from_the_local_booking_date():
    # 20:00 UTC on 7 Dec is 01:30 on 8 Dec in India: the booking's day is the 8th.
    booked = datetime(2026, 12, 7, 20, 0, tzinfo=UTC)
    assert promised_by(booked, 1, IST) == datetime(2026, 12, 9, 18, 29, 59, tzinfo=UTC)
    assert promised_by(booked, 0, IST) == datetime(2026, 12, 8, 18, 29, 59, tzinfo=UTC)
    # Calendar days: 13 Dec 2026 is a Sunday and counts.
    assert promised_by(datetime(2026, 12, 11, 6, 0, tzinfo=UTC), 3, IST).date() == date(2026, 12, 14)
    assert end_of_local_day(date(2026, 12, 9), "UTC") == datetime(2026, 12, 9, 23, 59, 59, tzinfo=UTC)


def test_days_and_given_days_are_checked():
    assert promise_days_problem(0) is None and promise_days_problem(30) is None
    assert promise_days_problem(31) and promise_days_problem(-1) and promise_days_problem(True)
    assert promise_days_problem(None) and promise_days_problem("2")
    today = date(2026, 12, 7)
    assert given_day_problem(today, today) is None and given_day_problem(date(2027, 2, 5), today) is None
    assert given_day_problem(date(2026, 12, 6), today) == "Must not be before today."
    assert given_day_problem(date(2027, 2, 6), today) == "At most 60 days ahead."


# --- the table ---------------------------------------------------------------------------------------------------

def test_the_table_shows_defaults_and_saves_changes_audited(app, client, auth):
    auth.login("admin1", role="admin")
    body = client.get("/admin/promises").get_json()
    assert body["days"] == body["defaults"] == {"standard": {"local": 1, "state": 3, "national": 5},
                                                "express": {"local": 0, "state": 2, "national": 4}}
    assert body["updated_by"] is None
    saved = client.post("/admin/promises", json={"days": {"standard": {"national": 7}, "express": {"local": 0}}},
                        headers=auth.headers())
    assert saved.status_code == 200, saved.get_json()
    assert saved.get_json()["days"]["standard"]["national"] == 7 and saved.get_json()["updated_by"] == "admin1"
    with app.app_context():
        assert db.session.scalars(select(PromiseRule)).all()[0].days == 7  # express local did not change
        [audit] = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "promise_rules_saved")).all()
        assert audit.details == {"changed": [{"service": "standard", "zone": "national", "from": 5, "to": 7}]}
    again = client.post("/admin/promises", json={"days": {"standard": {"national": 7}}}, headers=auth.headers())
    assert again.status_code == 200
    with app.app_context():
        assert db.session.query(AuditEntry).filter_by(action="promise_rules_saved").count() == 1


@pytest.mark.parametrize("value, field", [
    (31, "days.standard.local"), (-1, "days.standard.local"), (2.5, "days.standard.local"),
    ("many", "days.standard.local"), (True, "days.standard.local"),
])
def test_bad_days_are_400_naming_the_pair_and_save_nothing(app, client, auth, value, field):
    auth.login("admin1", role="admin")
    response = client.post("/admin/promises", json={"days": {"standard": {"local": value}, "express": {"state": 1}}},
                           headers=auth.headers())
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    with app.app_context():
        assert db.session.scalars(select(PromiseRule)).all() == []


def test_an_unknown_pair_is_400(client, auth):
    auth.login("admin1", role="admin")
    response = client.post("/admin/promises", json={"days": {"overnight": {"local": 1}}}, headers=auth.headers())
    assert response.status_code == 400 and "days.overnight.local" in response.get_json()["fields"]


def test_the_page_form_needs_csrf_and_saves(app, client, auth):
    auth.login("admin1", role="admin")
    page = client.get("/admin/promises", headers=HTML)
    assert page.status_code == 200 and 'name="days.express.national"' in page.get_data(as_text=True)
    form = {f"days.{s}.{z}": str(d) for (s, z), d in DEFAULT_PROMISE_DAYS.items()}
    assert client.post("/admin/promises", data={**form, "days.express.national": "3"},
                       headers=HTML).status_code == 400  # no CSRF token
    bad = client.post("/admin/promises", data={**form, "csrf_token": csrf_from(page), "days.express.national": "99"},
                      headers=HTML)
    assert bad.status_code == 400 and "From 0 to 30 days." in bad.get_data(as_text=True)
    good = client.post("/admin/promises", data={**form, "csrf_token": csrf_from(page), "days.express.national": "3"},
                       headers=HTML)
    assert good.status_code == 302
    assert client.get("/admin/promises").get_json()["days"]["express"]["national"] == 3


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_admins_see_or_change_the_table(client, auth, role):
    auth.login("someone", role=role)
    assert client.get("/admin/promises").status_code == 403
    assert client.post("/admin/promises", json={"days": {"standard": {"local": 2}}},
                       headers=auth.headers()).status_code == 403


# --- every booking door ------------------------------------------------------------------------------------------

def expected_promise(app, created_at: str, days: int) -> str:
    local_day = to_local(parse_iso_z(created_at), app.config["DISPLAY_TIMEZONE"]).date()
    return end_of_local_day(local_day + timedelta(days=days), app.config["DISPLAY_TIMEZONE"]).isoformat().replace(
        "+00:00", "Z")


def staff_record(client, tracking_id: str) -> dict:
    return client.get(f"/admin/shipments/{tracking_id}").get_json()


def test_the_public_booking_is_promised_by_its_zone_and_service(app, client, auth, create_shipment):
    # ORIGIN_PINCODE is 560001 (Bengaluru): 560034 is local, 563101 (Kolar) within the state, 682016 national.
    local = client.post("/create", json={"sender_name": "Asha Rao", "receiver_name": "Vikram Nair",
                                         "mobile": "9876543210", "destination": "Koramangala, Bengaluru",
                                         "destination_pincode": "560034"})
    assert local.status_code == 201
    express_state = create_shipment(destination="Kolar", destination_pincode="563101", service="express")
    national = create_shipment(destination="Kochi 682016")
    no_pin = create_shipment(destination="Kochi")  # no PIN code: national, as for its price
    auth.login()
    cases = [(local.get_json()["tracking_id"], 1), (express_state, 2), (national, 5), (no_pin, 5)]
    for tracking_id, days in cases:
        record = staff_record(client, tracking_id)
        assert record["promised_by"] == expected_promise(app, record["created_at"], days), tracking_id
    assert local.get_json()["promised_by"] == staff_record(client, cases[0][0])["promised_by"]


def test_an_edited_table_promises_new_bookings_and_moves_no_old_one(app, client, auth, create_shipment):
    before = create_shipment(destination="Kochi 682016")
    auth.login("admin1", role="admin")
    client.post("/admin/promises", json={"days": {"standard": {"national": 8}}}, headers=auth.headers())
    after = create_shipment(destination="Kochi 682016")
    old, new = staff_record(client, before), staff_record(client, after)
    assert old["promised_by"] == expected_promise(app, old["created_at"], 5)
    assert new["promised_by"] == expected_promise(app, new["created_at"], 8)


def test_a_correction_of_the_pin_code_keeps_the_promise(app, client, auth, create_shipment):
    tracking_id = create_shipment(destination="Kochi 682016")
    auth.login()
    promised = staff_record(client, tracking_id)["promised_by"]
    edited = client.post(f"/admin/shipments/{tracking_id}/edit", json={"destination_pincode": "560034"},
                         headers=auth.headers())
    assert edited.status_code == 200, edited.get_json()
    assert edited.get_json()["charges"]["zone"] == "local"  # priced again, promised as before
    assert staff_record(client, tracking_id)["promised_by"] == promised


def test_the_csv_import_promises_every_row(app, client, auth):
    auth.login()
    content = ("sender_name,receiver_name,mobile,destination,destination_pincode,service\n"
               "Asha Rao,Vikram Nair,9876543210,Bengaluru,560034,standard\n"
               "Ravi Kumar,Meera Iyer,9876543211,Kochi,682016,express\n")
    response = client.post("/admin/imports", data={"file": (io.BytesIO(content.encode()), "b.csv")},
                           headers=auth.headers(), content_type="multipart/form-data")
    assert response.status_code == 201, response.get_json()
    first, second = response.get_json()["tracking_ids"]
    assert staff_record(client, first)["promised_by"] == expected_promise(
        app, staff_record(client, first)["created_at"], 1)
    assert staff_record(client, second)["promised_by"] == expected_promise(
        app, staff_record(client, second)["created_at"], 4)


API_BOOKING = {"sender_name": "Meera Iyer", "receiver_name": "Arjun Menon", "mobile": "+91 9447012345",
               "destination": "12 MG Road, Kochi 682016"}


def test_the_api_takes_a_promised_day_or_the_table(app, client, issue_key):
    headers = bearer(issue_key("integrator", role="operator"))
    today = to_local(utcnow(), app.config["DISPLAY_TIMEZONE"]).date()
    day = today + timedelta(days=10)
    given = client.post("/api/v1/shipments", json={**API_BOOKING, "promised_by": day.isoformat()}, headers=headers)
    assert given.status_code == 201, given.get_json()
    assert given.get_json()["promised_by"] == end_of_local_day(day, app.config["DISPLAY_TIMEZONE"]).isoformat() \
        .replace("+00:00", "Z")
    table = client.post("/api/v1/shipments", json=API_BOOKING, headers=headers).get_json()
    assert table["promised_by"] == expected_promise(app, table["created_at"], 5)
    fetched = client.get(f"/api/v1/shipments/{given.get_json()['tracking_id']}", headers=headers).get_json()
    assert fetched["promised_by"] == given.get_json()["promised_by"]


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01", "2026-02-30", "2026-12-09T10:00:00", 20261209, None])
def test_the_api_refuses_a_promised_day_that_is_not_a_date(app, client, issue_key, value):
    headers = bearer(issue_key("integrator", role="operator"))
    body = {**API_BOOKING, "promised_by": value}
    if value is None:
        body["promised_by"] = (to_local(utcnow(), app.config["DISPLAY_TIMEZONE"]).date()
                               - timedelta(days=1)).isoformat()
    response = client.post("/api/v1/shipments", json=body, headers=headers)
    assert response.status_code == 400, response.get_json()
    assert "promised_by" in response.get_json()["errors"]
    with app.app_context():
        assert db.session.scalars(select(Shipment)).all() == []


def test_the_api_refuses_a_day_more_than_60_days_ahead(app, client, issue_key):
    headers = bearer(issue_key("integrator", role="operator"))
    today = to_local(utcnow(), app.config["DISPLAY_TIMEZONE"]).date()
    far = client.post("/api/v1/shipments", json={**API_BOOKING, "promised_by": (today + timedelta(days=61))
                                                 .isoformat()}, headers=headers)
    assert far.status_code == 400 and far.get_json()["errors"] == {"promised_by": "At most 60 days ahead."}
    edge = client.post("/api/v1/shipments", json={**API_BOOKING, "promised_by": (today + timedelta(days=60))
                                                  .isoformat()}, headers=headers)
    assert edge.status_code == 201


def test_the_public_booking_cannot_name_a_promise(client):
    response = client.post("/create", json={"sender_name": "A B", "receiver_name": "C D", "mobile": "9876543210",
                                            "destination": "Kochi", "promised_by": "2030-01-01"})
    assert response.status_code == 400 and "promised_by" in response.get_json()["fields"]


# --- who sees it -------------------------------------------------------------------------------------------------

def test_tracking_json_and_page_show_the_promise_beside_the_estimate(app, client, create_shipment):
    tracking_id = create_shipment(destination="Kochi 682016")
    body = client.get(f"/track/{tracking_id}").get_json()
    promised = body["promised_by"]
    assert promised.endswith("Z") and body["estimated_delivery"] is not None
    page = client.get(f"/track/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert 'id="promised-by"' in page and f'datetime="{promised}"' in page and "Promised by" in page
    booked = client.get(f"/track/{tracking_id}?booked=1", headers=HTML).get_data(as_text=True)
    assert 'id="booked-promise"' in booked


def test_the_booked_email_says_the_promised_day(app, client, create_shipment):
    from app.models import Notification
    from app.services.outbox.messages import load_facts, render

    tracking_id = create_shipment(destination="Kochi 682016")
    with app.app_context(), app.test_request_context():
        row = db.session.scalars(select(Notification).join(Shipment).where(
            Shipment.tracking_id == tracking_id, Notification.channel == "email")).one()
        email = render(row, load_facts([row]))
        promised = db.session.scalar(select(Shipment.promised_by).where(Shipment.tracking_id == tracking_id))
    day = to_local(promised, app.config["DISPLAY_TIMEZONE"]).strftime("%d %b %Y")
    assert "Promised by:" in email.body_text and day in email.body_text
    assert "Promised by" in email.body_html and day in email.body_html
