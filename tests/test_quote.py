"""The public price check, GET /quote: the charges a booking would get, by the booking's own rules, with nothing
personal in the answer; refusals name their field; rate-limited per client address. No SQL of its own (it reads
the rate card as bookings do), so SQLite only."""
from __future__ import annotations

import pytest

from app import create_app
from app.domain.pricing import DEFAULT_RATE_CARD
from app.extensions import db
from app.services.shipments.rates import save_card

pytestmark = pytest.mark.one_database

# The booking form's worked example: Bengaluru to Kochi, 2 kg in a 40 × 30 × 20 cm box, ₹1,500 to collect.
EXAMPLE = {"destination_pincode": "682031", "sender_pincode": "560001", "weight_kg": "2", "length_cm": "40",
           "width_cm": "30", "height_cm": "20", "service": "standard", "payment": "cod", "cod_amount": "1500"}


def quote(client, **query):
    return client.get("/quote", query_string=query, headers={"Accept": "application/json"})


def test_the_worked_example_is_priced_as_its_booking_would_be(client):
    response = quote(client, **EXAMPLE)
    assert response.status_code == 200 and response.mimetype == "application/json"
    assert response.get_json() == {"charges": {
        "zone": "national", "chargeable_weight_kg": "5.0", "freight": "480.00", "cod_fee": "40.00", "tax": "93.60",
        "total": "613.60", "currency": "INR", "rate_card_version": 1}}


def test_the_charges_match_what_booking_the_same_parcel_stores(client):
    booking = {"sender_name": "Asha Rao", "receiver_name": "Vikram Nair", "mobile": "+91 98765 43210",
               "destination": "14 Marine Drive, Kochi", **EXAMPLE}
    booked = client.post("/create", json=booking)
    assert booked.status_code == 201, booked.get_json()
    assert booked.get_json()["charges"] == quote(client, **EXAMPLE).get_json()["charges"]


def test_what_is_left_out_takes_the_bookings_defaults(client):
    # No sender PIN code: from the office (ORIGIN_PINCODE 560001); standard, prepaid, the first 0.5 kg slab.
    national = quote(client, destination_pincode="682031").get_json()["charges"]
    assert (national["zone"], national["chargeable_weight_kg"], national["freight"], national["cod_fee"],
            national["total"]) == ("national", "0.5", "75.00", "0.00", "88.50")
    local = quote(client, destination_pincode="682 031", sender_pincode="682016", service="express",
                  weight_kg="1.2").get_json()["charges"]
    assert (local["zone"], local["chargeable_weight_kg"], local["freight"]) == ("local", "1.5", "120.00")
    # Blank parameters (a form's empty fields) are "not given".
    assert quote(client, destination_pincode="682031", weight_kg="", cod_amount="").status_code == 200


def test_a_new_rate_card_prices_the_next_quote(client, app):
    document = DEFAULT_RATE_CARD.as_document()
    document.pop("version")
    document["tax_rate"] = "0.12"
    with app.app_context():
        save_card(document, actor="chief")
        db.session.commit()
    charges = quote(client, **EXAMPLE).get_json()["charges"]
    assert (charges["tax"], charges["total"], charges["rate_card_version"]) == ("62.40", "582.40", 2)


TO_KOCHI = {"destination_pincode": "682031"}


@pytest.mark.parametrize("query, field", [
    ({}, "destination_pincode"),
    ({"destination_pincode": "  "}, "destination_pincode"),
    ({"destination_pincode": "68203"}, "destination_pincode"),
    ({"destination_pincode": "082031"}, "destination_pincode"),
    ({"destination_pincode": "999999"}, "destination_pincode"),  # well-formed, but no post office has it
    ({**TO_KOCHI, "sender_pincode": "999999"}, "sender_pincode"),
    ({**TO_KOCHI, "weight_kg": "0"}, "weight_kg"),
    ({**TO_KOCHI, "weight_kg": "101"}, "weight_kg"),  # the rate card would price it; a booking refuses it
    ({**TO_KOCHI, "weight_kg": "two"}, "weight_kg"),
    ({**TO_KOCHI, "length_cm": "40"}, "width_cm"),
    ({**TO_KOCHI, "length_cm": "301", "width_cm": "30", "height_cm": "20"}, "length_cm"),
    ({**TO_KOCHI, "service": "overnight"}, "service"),
    ({**TO_KOCHI, "payment": "card"}, "payment"),
    ({**TO_KOCHI, "payment": "cod"}, "cod_amount"),
    ({**TO_KOCHI, "payment": "cod", "cod_amount": "50000.01"}, "cod_amount"),  # above COD_MAX
    ({**TO_KOCHI, "payment": "cod", "cod_amount": "10.005"}, "cod_amount"),
    ({**TO_KOCHI, "cod_amount": "100"}, "cod_amount"),  # prepaid collects nothing
])
def test_a_value_a_booking_would_refuse_is_a_400_naming_the_field(client, query, field):
    response = quote(client, **query)
    assert response.status_code == 400
    body = response.get_json()
    assert field in body["fields"] and body["error"]
    assert "charges" not in body


def test_the_refusals_say_what_is_wrong(client):
    assert quote(client).get_json()["fields"] == {"destination_pincode": "Give the destination's PIN code."}
    assert quote(client, destination_pincode="999999").get_json()["fields"] == {
        "destination_pincode": "999999 is not a PIN code in India Post's directory."}
    hindi = client.get("/quote", headers={"Accept": "application/json", "Accept-Language": "hi"})
    assert hindi.get_json()["fields"]["destination_pincode"] == "गंतव्य का पिन कोड दें।"


@pytest.mark.parametrize("query, field", [
    ("destination_pincode=682031&weight=2", "weight"),
    ("destination_pincode=682031&mobile=9876543210", "mobile"),
    ("destination_pincode=682031&tracking_id=3F9A1C2B", "tracking_id"),
    ("destination_pincode=682031&weight_kg=1&weight_kg=90", "weight_kg"),
    ("destination_pincode=682031&destination_pincode=110001", "destination_pincode"),
])
def test_a_parameter_that_is_not_a_pricing_field_or_comes_twice_is_refused(client, query, field):
    response = client.get(f"/quote?{query}", headers={"Accept": "application/json"})
    assert response.status_code == 400 and field in response.get_json()["fields"]


def test_the_language_parameter_is_allowed(client):
    assert client.get("/quote?destination_pincode=682031&lang=hi").status_code == 200


@pytest.fixture
def limited(make_config, made_apps):
    def make(**overrides):
        made_apps.append(create_app(make_config(RATELIMIT_ENABLED=True, RATELIMIT_QUOTE="3 per minute",
                                                **overrides)))
        return made_apps[-1]
    return make


def test_the_price_check_is_rate_limited_per_client(limited):
    client = limited().test_client()
    assert [quote(client, **query).status_code
            for query in (EXAMPLE, {"destination_pincode": "12"}, {"destination_pincode": "110001"})] == [200, 400, 200]
    refused = quote(client, **EXAMPLE)
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert "Too many price checks" in refused.get_json()["error"]
    other = client.get("/quote", query_string=EXAMPLE, environ_base={"REMOTE_ADDR": "192.0.2.7"})
    assert other.status_code == 200


def test_the_price_check_and_the_pincode_check_have_budgets_of_their_own(limited):
    client = limited(RATELIMIT_SERVICEABILITY="1 per minute").test_client()
    assert client.get("/serviceability/682031").status_code == 200
    assert client.get("/serviceability/682031").status_code == 429
    assert quote(client, **EXAMPLE).status_code == 200
