"""The return leg: RTO Initiated and RTO In Transit, through the HTTP routes and the services, on both databases:
the transitions, and the recipient's messages in English and Hindi."""
from __future__ import annotations

import re
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Notification, Shipment, TrackingEvent
from app.notifier.sms import fitting_text, sms_encoding
from app.services.outbox import messages, preferences
from tests.conftest import VALID_BOOKING

HTML = {"Accept": "text/html"}
DEVANAGARI = re.compile("[\u0900-\u097f]")
TO_THE_DOOR = ("Picked Up", "In Transit", "Out for Delivery")
TO_THE_ATTEMPT = (*TO_THE_DOOR, "Delivery Attempted")
SENDER_CLERK = "Meena Iyer"  # who takes the parcel back at the sender's


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
