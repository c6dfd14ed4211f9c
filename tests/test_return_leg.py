"""The return leg: RTO Initiated and RTO In Transit, through the HTTP routes and the services, on both databases:
the transitions, and the recipient's messages in English and Hindi."""
from __future__ import annotations

import json
import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.errors import ValidationError
from app.extensions import db
from app.models import DeliveryProof, Notification, Shipment, TrackingEvent
from app.notifier.sms import fitting_text, sms_encoding
from app.services.outbox import messages, preferences
from app.services.shipments.proofs import RECEIVED_BY_AT_THE_SENDER, check_proof, missing_proof
from app.services.shipments.scans import ScanBatch, record_scans
from tests import api_support
from tests.api_support import bearer
from tests.conftest import VALID_BOOKING

HTML = {"Accept": "text/html"}
DEVANAGARI = re.compile("[\u0900-\u097f]")
TO_THE_DOOR = ("Picked Up", "In Transit", "Out for Delivery")
TO_THE_ATTEMPT = (*TO_THE_DOOR, "Delivery Attempted")
SENDER_CLERK = "Meena Iyer"  # who takes the parcel back at the sender's
ON_THE_WAY_BACK = (*TO_THE_ATTEMPT, "RTO Initiated", "RTO In Transit")


def book(client, language: str = "en") -> str:
    response = client.post(f"/create?lang={language}", json=VALID_BOOKING)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["tracking_id"]


def move(client, auth, tracking_id: str, *statuses: str, location: str = "Kochi Hub", **proof):
    """Each status in turn through the paper's POST /update; the last answer."""
    response = None
    for status in statuses:
        response = client.post(f"/update/{tracking_id}", json={"status": status, "location": location, **proof},
                               headers=auth.headers())
        assert response.status_code == 200, (status, response.get_json())
    return response


def render_for(app, tracking_id: str, channel: str, status: str):
    """The message of `channel` about the shipment's latest event in `status`, rendered as the worker would (the
    row need not be queued: the recipient's defaults decide that, not the template)."""
    with app.test_request_context():
        shipment_id, event_id = db.session.execute(
            select(Shipment.id, TrackingEvent.id).join(TrackingEvent, TrackingEvent.shipment_id == Shipment.id)
            .where(Shipment.tracking_id == tracking_id, TrackingEvent.status == status)
            .order_by(TrackingEvent.id.desc()).limit(1)).one()
        row = SimpleNamespace(id=1, channel=channel, recipient="someone", subject="", shipment_id=shipment_id,
                              event_id=event_id)
        return messages.render(row, messages.load_facts([row]))


# --- the state machine, through the routes ----------------------------------------------------------------------

def test_the_return_leg_runs_hub_to_hub_back_to_the_sender(client, auth):
    tracking_id = book(client)
    auth.login()
    move(client, auth, tracking_id, *TO_THE_ATTEMPT)
    body = move(client, auth, tracking_id, "RTO Initiated", location="Kochi Hub").get_json()
    assert body["status"] == "RTO Initiated"
    move(client, auth, tracking_id, "RTO In Transit", location="Kochi Hub")
    move(client, auth, tracking_id, "RTO In Transit", location="Pune Hub")  # repeatable: a new hub
    body = move(client, auth, tracking_id, "Returned to Sender", location="Mumbai", received_by=SENDER_CLERK).get_json()
    assert body["status"] == "Returned to Sender"
    assert [e["status"] for e in body["events"]][-4:] == [
        "RTO Initiated", "RTO In Transit", "RTO In Transit", "Returned to Sender"]
    refused = client.post(f"/update/{tracking_id}", json={"status": "RTO In Transit", "location": "Hub"},
                          headers=auth.headers())
    assert refused.status_code == 409 and refused.get_json()["allowed"] == []


@pytest.mark.parametrize("path, requested, allowed", [
    (TO_THE_DOOR, "RTO Initiated", ["Delivered", "Delivery Attempted", "On Hold"]),
    ((*TO_THE_ATTEMPT, "RTO Initiated"), "Returned to Sender", ["RTO In Transit", "On Hold"]),
    ((*TO_THE_ATTEMPT, "RTO Initiated"), "Out for Delivery", ["RTO In Transit", "On Hold"]),
    ((*TO_THE_ATTEMPT, "RTO Initiated", "RTO In Transit"), "Delivered",
     ["RTO In Transit", "Returned to Sender", "On Hold"]),
    (("Picked Up", "On Hold"), "RTO In Transit", ["Picked Up", "RTO Initiated"]),
    (("On Hold",), "RTO Initiated", ["Booked"]),
])
def test_a_move_off_the_return_leg_is_a_409_naming_the_allowed_statuses(client, auth, path, requested, allowed):
    tracking_id = book(client)
    auth.login()
    move(client, auth, tracking_id, *path)
    response = client.post(f"/update/{tracking_id}", json={"status": requested, "location": "Hub"},
                           headers=auth.headers())
    assert response.status_code == 409
    body = response.get_json()
    assert body["allowed"] == allowed and ", ".join(allowed) in body["error"]


def test_a_parcel_held_on_its_way_out_is_sent_back_from_the_hold(client, auth):
    tracking_id = book(client)
    auth.login()
    move(client, auth, tracking_id, "Picked Up", "In Transit", "On Hold")
    detail = client.get(f"/admin/shipments/{tracking_id}").get_json()
    assert detail["allowed_next_statuses"] == ["In Transit", "RTO Initiated"]
    move(client, auth, tracking_id, "RTO Initiated", "On Hold")  # the return leg may be held too…
    detail = client.get(f"/admin/shipments/{tracking_id}").get_json()
    assert detail["allowed_next_statuses"] == ["RTO Initiated"]  # …and goes on where it stopped
    body = move(client, auth, tracking_id, "RTO Initiated", "RTO In Transit").get_json()
    assert body["status"] == "RTO In Transit"


# --- the recipient's messages -----------------------------------------------------------------------------------

def test_the_delivery_day_choice_hears_that_the_parcel_goes_back_but_not_each_hub(app, client, auth):
    tracking_id = book(client)
    auth.login()
    move(client, auth, tracking_id, *TO_THE_ATTEMPT)
    with app.app_context():
        shipment_id = db.session.scalar(select(Shipment.id).where(Shipment.tracking_id == tracking_id))
        preferences.set_choice(shipment_id, "email", "delivery_day")
        db.session.commit()
    move(client, auth, tracking_id, "RTO Initiated", "RTO In Transit", "RTO In Transit")
    with app.app_context():
        subjects = list(db.session.scalars(
            select(Notification.subject).where(Notification.shipment_id == shipment_id, Notification.channel == "email")
            .order_by(Notification.id)))
    assert subjects[-1] == f"Shipment {tracking_id}: RTO Initiated"  # it stops the delivery: said that day


@pytest.mark.one_database  # rendering: the same on either database
def test_the_recipient_hears_of_the_return_leg_in_english(app, client, auth):
    tracking_id = book(client)
    auth.login()
    move(client, auth, tracking_id, *TO_THE_ATTEMPT, "RTO Initiated")
    move(client, auth, tracking_id, "RTO In Transit", location="Pune Hub")
    sender = VALID_BOOKING["sender_name"]
    email = render_for(app, tracking_id, "email", "RTO Initiated")
    assert email.subject == f"Shipment {tracking_id}: RTO Initiated"
    assert f"Your shipment {tracking_id} could not be delivered and is being sent back to {sender}." in email.body_text
    assert "Going back to the sender" in email.body_html
    email = render_for(app, tracking_id, "email", "RTO In Transit")
    assert f"is on its way back to {sender}. Its latest stop is Pune Hub." in email.body_text
    assert "On its way back" in email.body_html and "Estimated delivery" not in email.body_text
    for status, news in (("RTO Initiated", "will go back to the sender."),
                         ("RTO In Transit", "is returning to the sender.")):
        text = fitting_text(render_for(app, tracking_id, "sms", status).texts)
        assert text.startswith(f"Waybill: {tracking_id} {news} Track:"), text
        assert sms_encoding(text).encoding == "GSM-7" and sms_encoding(text).segments == 1


@pytest.mark.one_database
def test_the_recipient_hears_of_the_return_leg_in_hindi(app, client, auth):
    tracking_id = book(client, "hi")
    auth.login()
    move(client, auth, tracking_id, *TO_THE_ATTEMPT, "RTO Initiated", "RTO In Transit")
    for status, headline, news in (
            ("RTO Initiated", "भेजने वाले को वापसी", "को वापस भेजा जा रहा है।"),
            ("RTO In Transit", "वापसी के रास्ते में", "के पास वापस जा रहा है।")):
        email = render_for(app, tracking_id, "email", status)
        assert DEVANAGARI.search(email.subject) and status not in email.subject, email.subject
        assert headline in email.body_html and news in email.body_text, email.body_text
        text = fitting_text(render_for(app, tracking_id, "sms", status).texts)
        encoding = sms_encoding(text)
        assert encoding.encoding == "UCS-2" and encoding.segments <= 2, (text, encoding)
        assert DEVANAGARI.search(text) and status not in text and f"/track/{tracking_id}" in text, text


# --- the public tracking page and JSON --------------------------------------------------------------------------

def test_the_tracking_page_says_the_parcel_is_on_its_way_back(client, auth):
    tracking_id = book(client)
    auth.login()
    move(client, auth, tracking_id, *TO_THE_ATTEMPT, "RTO Initiated", "RTO In Transit")
    auth.logout()
    page = client.get(f"/track/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert "Your shipment is on its way back to its sender." in page
    assert 'class="notice notice--rto-in-transit"' in page and "badge-rto-in-transit" in page
    assert page.count("progress__step--stopped") == 1  # Delivered will not happen; the rest was reached
    assert 'aria-current="step"' not in page and "Estimated delivery" not in page
    hindi = client.get(f"/track/{tracking_id}?lang=hi", headers=HTML).get_data(as_text=True)
    assert "आपका शिपमेंट भेजने वाले के पास वापस जा रहा है।" in hindi and "वापसी के रास्ते में" in hindi


def test_public_json_shows_the_return_leg_and_no_personal_data(client, auth):
    tracking_id = book(client)
    auth.login()
    move(client, auth, tracking_id, *TO_THE_ATTEMPT, "RTO Initiated", "RTO In Transit")
    move(client, auth, tracking_id, "Returned to Sender", location="Mumbai", received_by=SENDER_CLERK,
         note="Signed at the back office")
    auth.logout()
    response = client.get(f"/track/{tracking_id}")
    body = response.get_json()
    assert body["status"] == "Returned to Sender" and body["estimated_delivery"] is None
    assert [e["status"] for e in body["events"]][-3:] == ["RTO Initiated", "RTO In Transit", "Returned to Sender"]
    assert "delivery" not in body  # who took it back at the sender's is for staff
    text = response.get_data(as_text=True)
    for private in (SENDER_CLERK, "Meena", "Signed at the back office", VALID_BOOKING["email"],
                    VALID_BOOKING["receiver_name"], VALID_BOOKING["sender_name"]):
        assert private not in text, private
    page = client.get(f"/track/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert "Your shipment could not be delivered and was returned to its sender." in page
    assert SENDER_CLERK not in page and "Meena" not in page


# --- who took it back: the proof at the end of the return leg ---------------------------------------------------

def test_check_proof_takes_a_name_with_returned_to_sender_and_missing_proof_asks_for_it_after_the_leg():
    assert check_proof("Returned to Sender", f"  {SENDER_CLERK} ", None, required=True).received_by == SENDER_CLERK
    assert check_proof("returned to sender", "   ", "nobody_home", required=True) is None  # never required here
    with pytest.raises(ValidationError) as caught:
        check_proof("Returned to Sender", "Meena\u202eIyer", None, required=False)
    assert set(caught.value.fields) == {"received_by"}
    assert missing_proof("Returned to Sender", "RTO In Transit", None) == {"received_by": RECEIVED_BY_AT_THE_SENDER}
    assert missing_proof("Returned to Sender", "RTO In Transit", check_proof(
        "Returned to Sender", SENDER_CLERK, None, required=True)) == {}
    assert missing_proof("Returned to Sender", "Delivery Attempted", None) == {}  # the direct path: none needed
    assert missing_proof("RTO In Transit", "RTO In Transit", None) == {}


def proof_rows(app, tracking_id: str) -> list[tuple[str, str | None]]:
    with app.app_context():
        return [tuple(row) for row in db.session.execute(
            select(TrackingEvent.status, DeliveryProof.received_by)
            .join(DeliveryProof, DeliveryProof.event_id == TrackingEvent.id)
            .join(Shipment, Shipment.id == TrackingEvent.shipment_id).where(Shipment.tracking_id == tracking_id))]


def status_of(app, tracking_id: str) -> str:
    with app.app_context():
        return db.session.scalar(select(Shipment.status).where(Shipment.tracking_id == tracking_id))


def test_the_api_needs_who_took_it_back_at_the_end_of_the_return_leg(app, client, issue_key):
    key = bearer(issue_key("integrator", role="operator"))
    returning = api_support.book(app, *ON_THE_WAY_BACK)
    events = f"/api/v1/shipments/{returning}/events"
    refused = client.post(events, headers=key, json={"status": "Returned to Sender", "location": "Mumbai"})
    assert refused.status_code == 400
    assert refused.get_json()["errors"] == {"received_by": RECEIVED_BY_AT_THE_SENDER}
    assert status_of(app, returning) == "RTO In Transit" and proof_rows(app, returning) == []
    accepted = client.post(events, headers=key, json={"status": "Returned to Sender", "location": "Mumbai",
                                                      "received_by": SENDER_CLERK})
    assert accepted.status_code == 201, accepted.get_json()
    assert accepted.get_json()["allowed_next_statuses"] == []
    assert proof_rows(app, returning) == [("Returned to Sender", SENDER_CLERK)]
    document = json.loads(render_for(app, returning, "webhook", "Returned to Sender").body)
    assert document["data"]["event"]["received_by"] == SENDER_CLERK  # integrators see the handover, as Delivered
    assert document["data"]["previous_status"] == "RTO In Transit"

    straight_back = api_support.book(app, *TO_THE_ATTEMPT)  # no return leg: no name needed
    response = client.post(f"/api/v1/shipments/{straight_back}/events", headers=key,
                           json={"status": "Returned to Sender", "location": "Kochi Hub"})
    assert response.status_code == 201, response.get_json()
    assert proof_rows(app, straight_back) == []


def test_the_published_document_says_when_returned_to_sender_needs_a_name(client):
    schema = client.get("/api/v1/openapi.json").get_json()["components"]["schemas"]["NewEvent"]
    rules = {rule["if"]["properties"]["status"]["const"]: rule["then"] for rule in schema["allOf"]}
    assert "required" not in rules["Returned to Sender"]  # it depends on the shipment's current status…
    assert "RTO In Transit" in rules["Returned to Sender"]["description"]  # …so it is said in words
    assert "RTO In Transit" in schema["properties"]["received_by"]["description"]


def test_a_bulk_call_and_a_scan_batch_refuse_only_the_parcels_at_the_end_of_a_return_leg(app, client, issue_key):
    key = bearer(issue_key("integrator", role="operator"))
    returning, straight_back = api_support.book(app, *ON_THE_WAY_BACK), api_support.book(app, *TO_THE_ATTEMPT)
    response = client.post("/api/v1/events", headers=key, json={"changes": [
        {"tracking_id": tracking_id, "status": "Returned to Sender", "location": "Mumbai"}
        for tracking_id in (returning, straight_back)]})
    results = response.get_json()["results"]
    assert [(r["ok"], r.get("reason")) for r in results] == [(False, "proof_missing"), (True, None)]
    assert "received_by" in results[0]["error"] and results[0]["status"] == "RTO In Transit"

    scanned_back, scanned_straight = api_support.book(app, *ON_THE_WAY_BACK), api_support.book(app, *TO_THE_ATTEMPT)
    with app.app_context():
        report = record_scans(ScanBatch("Returned to Sender", "Mumbai", [scanned_back, scanned_straight]), "op1")
        db.session.commit()
    assert [(o.ok, o.refusal) for o in report.outcomes] == [(False, "proof_missing"), (True, None)]
    with app.app_context():
        report = record_scans(ScanBatch("Returned to Sender", "Mumbai", [scanned_back],
                                        received_by=SENDER_CLERK), "op1")
        db.session.commit()
    assert report.accepted == 1 and proof_rows(app, scanned_back) == [("Returned to Sender", SENDER_CLERK)]


def test_the_staff_page_asks_for_who_took_it_back(app, client, auth):
    tracking_id = api_support.book(app, *ON_THE_WAY_BACK)
    auth.login()
    page = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert 'data-proof-for="Returned to Sender"' in page and 'name="received_by"' in page
    form = {"csrf_token": auth.csrf_token, "status": "Returned to Sender", "location": "Mumbai", "note": "",
            "customer_message": "", "received_by": "", "attempt_reason": "", "signature": ""}
    response = client.post(f"/admin/shipments/{tracking_id}", data=form, headers=HTML)
    assert response.status_code == 400
    assert RECEIVED_BY_AT_THE_SENDER.replace("'", "&#39;") in response.get_data(as_text=True)
    assert status_of(app, tracking_id) == "RTO In Transit"
    response = client.post(f"/admin/shipments/{tracking_id}", data={**form, "received_by": SENDER_CLERK},
                           headers=HTML)
    assert response.status_code == 302
    assert proof_rows(app, tracking_id) == [("Returned to Sender", SENDER_CLERK)]
