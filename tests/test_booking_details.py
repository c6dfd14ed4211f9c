"""Parcel details, payment and charges through every way of booking: the public form, `POST /create` JSON,
`/api/v1/shipments` and the CSV import (the rules themselves: tests/test_parcels.py, pricing: tests/test_rates.py,
serviceability: tests/test_serviceability.py)."""
from __future__ import annotations

import io
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from app.extensions import db
from app.models import Notification, Shipment, TrackingEvent
from app.services.shipments.serviceability import read_serviceability_csv, replace_all
from tests.api_support import bearer
from tests.conftest import VALID_BOOKING
from tests.test_public_privacy import csrf_from

HTML = {"Accept": "text/html"}

PARCEL = {
    "sender_mobile": "+91 98123 45678", "sender_email": "asha@example.org", "sender_address": "4 Park Street",
    "sender_pincode": "560001", "pickup": True, "destination": "14 Marine Drive, Kochi 682031",
    "weight_kg": 2, "length_cm": 40, "width_cm": 30, "height_cm": 20, "pieces": 2, "declared_value": 2000,
    "contents": "Books", "service": "standard", "payment": "cod", "cod_amount": 1500,
}
# 560001 → 682031: national; 2 kg actual, 40×30×20 cm ÷ 5000 = 4.8 → 5.0 kg chargeable: 75 + 9 × 45 = 480.00
# freight, COD fee max(40, 2 % of 1500 = 30) = 40.00, tax 18 % of 520 = 93.60, total 613.60.
CHARGES = {"zone": "national", "chargeable_weight_kg": "5.0", "freight": "480.00", "cod_fee": "40.00",
           "tax": "93.60", "total": "613.60", "currency": "INR", "rate_card_version": 1}


def counts(app) -> tuple[int, int, int]:
    with app.app_context():
        return tuple(db.session.scalar(select(func.count()).select_from(model))
                     for model in (Shipment, TrackingEvent, Notification))


def stored(app, tracking_id: str) -> Shipment:
    with app.app_context():
        shipment = db.session.scalars(select(Shipment).where(Shipment.tracking_id == tracking_id)).one()
        db.session.expunge(shipment)
        return shipment


def serve_only(app, rows: str) -> None:
    with app.app_context():
        replace_all(read_serviceability_csv(f"pincode,cod,express\n{rows}".encode()), actor="admin")
        db.session.commit()


def test_the_json_booking_keeps_every_detail_and_its_charges(client, app):
    response = client.post("/create", json={**VALID_BOOKING, **PARCEL})
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["charges"] == CHARGES
    shipment = stored(app, body["tracking_id"])
    assert (shipment.sender_mobile, shipment.sender_email, shipment.sender_pincode, shipment.pickup) == \
        ("+919812345678", "asha@example.org", "560001", True)
    assert (shipment.destination_pincode, shipment.weight_kg, shipment.pieces, shipment.payment) == \
        ("682031", Decimal("2.000"), 2, "cod")
    assert (shipment.cod_amount, shipment.declared_value, shipment.contents) == \
        (Decimal("1500.00"), Decimal("2000.00"), "Books")
    assert shipment.charges == CHARGES and shipment.rate_card_version == 1


def test_the_staff_page_shows_the_parcel_its_payment_and_its_charges(client, app, auth):
    tracking_id = client.post("/create", json={**VALID_BOOKING, **PARCEL}).get_json()["tracking_id"]
    auth.login("support1", role="viewer")
    html = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    for shown in ("+919812345678", "asha@example.org", "4 Park Street", "560001", "682031", "40 × 30 × 20", "Books",
                  "Cash on delivery: ₹1,500.00 to collect", "₹2,000.00", "₹480.00", "₹613.60", "Rate card version 1",
                  f'href="/admin/shipments/{tracking_id}/receipt.pdf"'):
        assert shown in html, shown
    assert "<dd>2</dd>" in html  # pieces


def test_the_papers_five_fields_still_book_a_prepaid_standard_piece(client, app):
    response = client.post("/create", json=VALID_BOOKING)
    assert response.status_code == 201
    shipment = stored(app, response.get_json()["tracking_id"])
    assert (shipment.pieces, shipment.service, shipment.payment, shipment.destination_pincode) == \
        (1, "standard", "prepaid", None)
    assert shipment.charges["total"] == "88.50"  # national first slab: 75.00 + 18 %


def test_a_mobile_is_enough_and_then_no_email_is_queued(client, app):
    booking = {key: value for key, value in VALID_BOOKING.items() if key != "email"}
    response = client.post("/create", json=booking)
    assert response.status_code == 201, response.get_json()
    with app.app_context():
        channels = db.session.scalars(select(Notification.channel)).all()
        assert "email" not in channels
        assert db.session.scalar(select(Shipment.email)) is None


def test_the_public_form_books_the_details_from_text_fields(client, app):
    form = {**VALID_BOOKING, **{key: str(value) for key, value in PARCEL.items()}, "pickup": "true",
            "csrf_token": csrf_from(client.get("/", headers=HTML))}
    response = client.post("/create", data=form, headers=HTML)
    assert response.status_code == 302
    page = client.get(response.headers["Location"], headers={"Accept": "text/html"})
    text = page.get_data(as_text=True)
    assert 'id="booked-charges"' in text and "₹613.60" in text
    tracking_id = response.headers["Location"].split("/track/")[1].split("?")[0]
    assert stored(app, tracking_id).charges == CHARGES
    # Anyone else, and this same page as JSON, sees no charges and no parcel details but the pieces.
    other = app.test_client().get(response.headers["Location"], headers={"Accept": "text/html"})
    assert 'id="booked-charges"' not in other.get_data(as_text=True)
    public = client.get(f"/track/{tracking_id}").get_json()
    assert public["pieces"] == 2
    for private in ("charges", "weight_kg", "cod_amount", "declared_value", "sender_mobile", "contents"):
        assert private not in public


@pytest.mark.parametrize(("change", "field"), [
    ({"destination_pincode": "999999"}, "destination_pincode"),  # not in India Post's directory
    ({"sender_pincode": "111111"}, "sender_pincode"),
    ({"cod_amount": 60000, "declared_value": None}, "cod_amount"),  # above COD_MAX
    ({"weight_kg": 250}, "weight_kg"),
    ({"sender_mobile": "12345"}, "sender_mobile"),
    ({"sender_email": "not-an-email"}, "sender_email"),
    ({"pickup": "maybe"}, "pickup"),
])
def test_bad_details_are_400_naming_the_field_and_write_nothing(client, app, change, field):
    response = client.post("/create", json={**VALID_BOOKING, **PARCEL, **change})
    assert response.status_code == 400, response.get_json()
    assert field in response.get_json()["fields"]
    assert counts(app) == (0, 0, 0)


@pytest.mark.parametrize(("change", "field"), [
    ({"payment": "cod", "cod_amount": None}, "cod_amount"),  # cash on delivery without an amount
    ({"payment": "prepaid"}, "cod_amount"),  # an amount without it
    ({"cod_amount": 2500}, "cod_amount"),  # above the declared value (2000)
    ({"width_cm": None}, "width_cm"),  # two sides of three
])
def test_values_that_do_not_fit_together_are_422_on_every_door(client, app, issue_key, change, field):
    response = client.post("/create", json={**VALID_BOOKING, **PARCEL, **change})
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["fields"]
    key = bearer(issue_key("integrator", role="operator"))
    api = client.post("/api/v1/shipments", json={**VALID_BOOKING, **PARCEL, **change}, headers=key)
    assert api.status_code == 422 and field in api.get_json()["errors"], api.get_json()
    assert counts(app) == (0, 0, 0)


def test_a_pin_only_read_from_the_destination_is_dropped_when_unknown(client, app):
    response = client.post("/create", json={**VALID_BOOKING, "destination": "Flat 999999, Kochi"})
    assert response.status_code == 201
    assert stored(app, response.get_json()["tracking_id"]).destination_pincode is None


@pytest.mark.parametrize(("served", "change", "field"), [
    ("110001,true,true", {}, "destination_pincode"),  # 682031 is not on the list
    ("682031,false,true", {}, "payment"),  # no cash on delivery there
    ("682031,true,false", {"service": "express"}, "service"),
    ("682031,true,true", {"destination": "Kochi", "destination_pincode": None}, "destination_pincode"),
])
def test_the_network_refuses_with_422_and_nothing_written(client, app, served, change, field):
    serve_only(app, served)
    response = client.post("/create", json={**VALID_BOOKING, **PARCEL, **change})
    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["fields"]
    assert counts(app) == (0, 0, 0)
    form = {**VALID_BOOKING, "destination": "Kochi 682031" if field != "destination_pincode" else "Kochi",
            "payment": "cod", "cod_amount": "100", "csrf_token": csrf_from(client.get("/", headers=HTML)),
            **({"service": "express"} if field == "service" else {})}
    if served.startswith("110001"):
        form["destination"] = "Kochi 682031"
    page = client.post("/create", data=form, headers=HTML)
    assert page.status_code == 422 and 'class="error-summary' in page.get_data(as_text=True)
    assert counts(app) == (0, 0, 0)


def test_the_api_books_the_details_and_answers_them_to_staff(client, app, issue_key):
    key = bearer(issue_key("integrator", role="operator"))
    response = client.post("/api/v1/shipments", json={**VALID_BOOKING, **PARCEL}, headers=key)
    assert response.status_code == 201, response.get_json()
    body = response.get_json()
    assert body["charges"] == CHARGES and body["pieces"] == 2 and body["payment"] == "cod"
    assert (body["weight_kg"], body["cod_amount"], body["sender_mobile"]) == ("2.000", "1500.00", "+919812345678")
    fetched = client.get(f"/api/v1/shipments/{body['tracking_id']}", headers=key).get_json()
    assert fetched["charges"] == CHARGES and fetched["destination_pincode"] == "682031"
    refused = client.post("/api/v1/shipments", json={**VALID_BOOKING, **PARCEL, "weight_kg": "2"}, headers=key)
    assert refused.status_code == 400 and "weight_kg" in refused.get_json()["errors"]


def test_the_api_answers_422_as_a_problem_naming_the_field(client, app, issue_key):
    serve_only(app, "110001,true,true")
    key = bearer(issue_key("integrator", role="operator"))
    response = client.post("/api/v1/shipments", json={**VALID_BOOKING, **PARCEL}, headers=key)
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    assert response.get_json()["type"].endswith("#problem-unprocessable")
    assert "destination_pincode" in response.get_json()["errors"]
    assert counts(app) == (0, 0, 0)


def upload(client, auth, text: str):
    return client.post("/admin/imports", data={"file": (io.BytesIO(text.encode()), "bookings.csv")},
                       headers=auth.headers(), content_type="multipart/form-data")


def test_the_import_takes_the_detail_columns_and_refuses_rows_the_network_cannot_take(client, auth, app):
    auth.login()
    header = "sender_name,receiver_name,mobile,destination,weight_kg,pieces,payment,cod_amount,service"
    rows = ["Asha Rao,Vikram Nair,+91 98765 43210,Kochi 682031,1.5,3,cod,999.50,",
            "Ravi Kumar,Meera Iyer,098765 43211,Bengaluru 560001,,,,,express"]
    done = upload(client, auth, "\n".join([header, *rows]))
    assert done.status_code == 201, done.get_json()
    first, second = (stored(app, tid) for tid in done.get_json()["tracking_ids"])
    assert (first.pieces, first.payment, first.cod_amount, first.email) == (3, "cod", Decimal("999.50"), None)
    assert second.service == "express" and second.charges["zone"] == "local"  # 560001 → 560001
    serve_only(app, "560001,true,false")
    before = counts(app)
    refused = upload(client, auth, "\n".join([header, *rows]))
    assert refused.status_code == 400
    assert [(row["line"], sorted(row["fields"])) for row in refused.get_json()["rows"]] == \
        [(2, ["destination_pincode"]), (3, ["service"])]
    assert counts(app) == before


def test_the_parcel_rules_speak_the_readers_language(client, app):
    """The rules are stated once (app/domain/parcels.py) and said in the page's language."""
    response = client.post("/create?lang=hi", json={**VALID_BOOKING, "weight_kg": 500, "pieces": "many"})
    assert response.status_code == 400
    fields = response.get_json()["fields"]
    assert fields["weight_kg"] == "0.01 से 100 के बीच होना चाहिए।"
    assert fields["pieces"] == "नगों की संख्या पूर्ण अंक में लिखें।"
    english = client.post("/create?lang=en", json={**VALID_BOOKING, "weight_kg": 500}).get_json()["fields"]
    assert english["weight_kg"] == "Must be from 0.01 to 100."
    assert counts(app) == (0, 0, 0)
