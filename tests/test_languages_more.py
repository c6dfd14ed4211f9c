"""Hindi for what recipients see of the later features: the notification-choices page and its one-click answer,
a Hindi booking's SMS (within two UCS-2 segments), the delivered and attempted emails naming the receiver and the
reason, and "Delivered to <first name>" on the tracking page."""
from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.extensions import db
from app.models import Notification, Shipment, TrackingEvent
from app.notifier.sms import fitting_text, sms_encoding
from app.services.outbox import messages, preferences
from tests.conftest import VALID_BOOKING

# Rendering, translations and logs: the same on either database (tests/README.md).
pytestmark = pytest.mark.one_database

HTML = {"Accept": "text/html"}
DEVANAGARI = re.compile("[\u0900-\u097f]")
TO_THE_DOOR = ("Picked Up", "In Transit", "Out for Delivery")
RECEIVER = "Ravi Kumar Menon"


def book(client, language: str) -> str:
    response = client.post(f"/create?lang={language}", json=VALID_BOOKING)
    assert response.status_code == 201, response.get_json()
    return response.get_json()["tracking_id"]


def move(client, auth, tracking_id: str, *statuses: str, **proof) -> None:
    for status in statuses:
        response = client.post(f"/update/{tracking_id}", json={"status": status, "location": "Kochi Hub", **proof},
                               headers=auth.headers())
        assert response.status_code == 200, response.get_json()


def token_for(app, tracking_id: str, channel: str) -> str:
    with app.app_context():
        shipment_id = db.session.scalar(select(Shipment.id).where(Shipment.tracking_id == tracking_id))
        return preferences.choices_token(shipment_id, channel)


def rendered(app, tracking_id: str, channel: str, status: str):
    with app.app_context():
        row = db.session.scalars(
            select(Notification).join(TrackingEvent, TrackingEvent.id == Notification.event_id)
            .join(Shipment, Shipment.id == TrackingEvent.shipment_id)
            .where(Shipment.tracking_id == tracking_id, Notification.channel == channel,
                   TrackingEvent.status == status)).one()
        return messages.render(row, messages.load_facts([row]))


def csrf(page: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)


# --- the choices page ----------------------------------------------------------------------------------------

def test_the_choices_page_speaks_the_requests_language(app, client, create_shipment):
    tracking_id = create_shipment()
    url = f"/n/{token_for(app, tracking_id, 'sms')}"
    page = client.get(f"{url}?lang=hi", headers=HTML).get_data(as_text=True)
    assert '<html lang="hi">' in page
    for words in (f"शिपमेंट {tracking_id} के एसएमएस अपडेट", "आपको कौन-से अपडेट चाहिए?", "सभी अपडेट",
                  "केवल डिलीवरी का दिन", "कोई नहीं", "मेरा चुनाव सहेजें", "इस शिपमेंट को ट्रैक करें",
                  "आपने अभी तक नहीं चुना है"):
        assert words in page, words
    assert "Save my choice" not in page and "Which updates" not in page
    # Another browser, saying Hindi only through Accept-Language, gets the same; English stays English.
    other = app.test_client()
    assert "मेरा चुनाव सहेजें" in other.get(url, headers={**HTML, "Accept-Language": "hi-IN,hi;q=0.9"}).get_data(
        as_text=True)
    english = app.test_client().get(url, headers={**HTML, "Accept-Language": "en"}).get_data(as_text=True)
    assert "Save my choice" in english and "SMS updates for shipment" in english


def test_saving_and_its_errors_on_the_choices_page_are_in_hindi(app, client, create_shipment):
    tracking_id = create_shipment()
    url = f"/n/{token_for(app, tracking_id, 'email')}"
    page = client.get(f"{url}?lang=hi", headers=HTML).get_data(as_text=True)
    missing = client.post(url, headers=HTML, data={"csrf_token": csrf(page)})
    assert missing.status_code == 400
    body = missing.get_data(as_text=True)
    assert "एक समस्या है" in body and "कोई एक चुनें।" in body
    saved = client.post(url, headers=HTML, data={"csrf_token": csrf(page), "choice": "delivery_day"},
                        follow_redirects=True)
    body = saved.get_data(as_text=True)
    assert saved.status_code == 200 and "सहेज लिया गया।" in body and "आपको मिलेंगे: केवल डिलीवरी का दिन" in body
    bad = client.get("/n/1e.forged", headers=HTML)
    assert bad.status_code == 404 and "पृष्ठ नहीं मिला" in bad.get_data(as_text=True)
    bad = app.test_client().get("/n/1e.forged", headers={"Accept-Language": "hi"})
    assert bad.status_code == 404
    assert bad.get_json() == {"error": "यह लिंक मान्य नहीं है। अपने सबसे नए संदेश वाला लिंक इस्तेमाल करें।"}


def test_the_one_click_unsubscribe_answers_in_hindi(app, create_shipment):
    tracking_id = create_shipment()
    mailer = app.test_client()  # a mail provider: no cookie, no CSRF token, Hindi from its Accept-Language
    response = mailer.post(f"/n/{token_for(app, tracking_id, 'email')}", data={"List-Unsubscribe": "One-Click"},
                           headers={**HTML, "Accept-Language": "hi"})
    assert response.status_code == 200
    body = response.get_data(as_text=True)
    assert "सहेज लिया गया।" in body and "अब आपको इस शिपमेंट के बारे में कोई ईमेल संदेश नहीं मिलेगा।" in body


# --- messages in the booking's language ----------------------------------------------------------------------

def test_a_hindi_bookings_sms_is_hindi_within_two_segments(app, client, auth):
    hindi, english = book(client, "hi"), book(app.test_client(), "en")
    auth.login()  # the operator's own language does not matter
    for tracking_id in (hindi, english):
        move(client, auth, tracking_id, *TO_THE_DOOR)
    text = fitting_text(rendered(app, hindi, "sms", "Out for Delivery").texts)
    encoding = sms_encoding(text)
    assert encoding.encoding == "UCS-2" and encoding.segments <= 2, (text, encoding)
    assert f"Waybill: {hindi} आज डिलीवरी के लिए निकला है। ट्रैक करें:" in text and f"/track/{hindi}" in text
    english_text = fitting_text(rendered(app, english, "sms", "Out for Delivery").texts)
    assert english_text.startswith(f"Waybill: {english} is out for delivery today. Track:")
    assert sms_encoding(english_text).encoding == "GSM-7"


def test_the_hindi_delivered_and_attempted_emails_name_the_receiver_and_the_reason(app, client, auth):
    tracking_id = book(client, "hi")
    auth.login()
    move(client, auth, tracking_id, *TO_THE_DOOR)
    move(client, auth, tracking_id, "Delivery Attempted", attempt_reason="nobody_home")
    move(client, auth, tracking_id, "Out for Delivery")
    move(client, auth, tracking_id, "Delivered", received_by=RECEIVER)
    delivered = rendered(app, tracking_id, "email", "Delivered")
    sentence = f"आपका शिपमेंट {tracking_id} डिलीवर हो गया है और इसे {RECEIVER} ने लिया।"
    assert sentence in delivered.body_text and sentence in delivered.body_html
    assert "चुनें कि आपको कौन-से अपडेट मिलें, या उन्हें बंद करें:" in delivered.body_text
    assert "received by" not in delivered.body_text
    attempted = rendered(app, tracking_id, "email", "Delivery Attempted")
    assert "पर नहीं कर पाए (घर पर कोई नहीं था)।" in attempted.body_text
    assert "Nobody home" not in attempted.body_text and "nobody home" not in attempted.body_html


def test_the_hindi_tracking_page_says_delivered_to_the_first_name(app, client, auth):
    tracking_id = book(client, "en")
    auth.login()
    move(client, auth, tracking_id, *TO_THE_DOOR)
    move(client, auth, tracking_id, "Delivered", received_by=RECEIVER)
    auth.logout()
    page = client.get(f"/track/{tracking_id}?lang=hi", headers=HTML).get_data(as_text=True)
    fragment = client.get(f"/track/{tracking_id}?fragment=timeline", headers=HTML).get_data(as_text=True)
    for text in (page, fragment):
        assert re.search(r'<time datetime="[^"]+Z">[^<]+</time> पर Ravi को डिलीवर हुआ', text), text[-2000:]
        assert "Delivered to" not in text and "Kumar" not in text and "Menon" not in text
    english = app.test_client().get(f"/track/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert re.search(r"Delivered to Ravi at <time", english)


def test_rate_limit_answers_speak_the_visitors_language(make_config, made_apps):
    """A visitor held back by a limit reads why in their language: the page and the JSON alike."""
    from app import create_app

    application = create_app(make_config(RATELIMIT_ENABLED=True, RATELIMIT_TRACK_MISS="1 per minute",
                                         RATELIMIT_SEARCH="1 per minute"))
    made_apps.append(application)
    client = application.test_client()
    assert client.get("/track/FFFFFFFF?lang=hi").status_code == 404
    held = client.get("/track/FFFFFFFE?lang=hi")
    assert held.status_code == 429 and held.headers["Retry-After"]
    assert held.get_json()["error"] == "आपके पते से बहुत ज़्यादा अनजान ट्रैकिंग आईडी आई हैं; थोड़ी देर बाद फिर से कोशिश करें।"
    assert client.get("/search/9876543210", headers={"Accept-Language": "en"}).status_code == 200
    page = client.get("/search/9876543210", headers={**HTML, "Accept-Language": "hi"})
    assert page.status_code == 429
    assert "आपके पते से बहुत ज़्यादा खोजें की गई हैं" in page.get_data(as_text=True)
    english = client.get("/track/FFFFFFFD?lang=en")
    assert english.get_json()["error"] == "Too many unknown tracking IDs from your address; try again shortly."


# --- what a Hindi visitor reads of the app's own words ------------------------------------------------------------

def test_email_problems_are_in_the_visitors_language(client):
    for email, hindi in (("vikram", "ईमेल पते में @ का चिह्न होता है"), ("vikram@example", "यह सही ईमेल पता नहीं है")):
        answer = client.post("/create?lang=hi", json={**VALID_BOOKING, "email": email})
        assert answer.status_code == 400
        assert hindi in answer.get_json()["fields"]["email"] and "@-sign" not in str(answer.get_json())
        page = client.post("/create?lang=hi", data={"csrf_token": csrf(client.get("/?lang=hi", headers=HTML)
                                                                        .get_data(as_text=True)),
                                                    **VALID_BOOKING, "email": email}, headers=HTML)
        assert page.status_code == 400 and hindi in page.get_data(as_text=True)
    english = client.post("/create?lang=en", json={**VALID_BOOKING, "email": "vikram"}).get_json()
    assert english["fields"]["email"] == "An email address has an @ sign, as in name@example.com."


def test_the_csrf_error_page_speaks_hindi(client):
    client.get("/?lang=hi", headers=HTML)  # the language cookie
    page = client.post("/create", data=VALID_BOOKING, headers=HTML)
    text = page.get_data(as_text=True)
    assert page.status_code == 400
    assert "CSRF" not in text and "token" not in text
    assert "फ़ॉर्म की सुरक्षा जाँच विफल रही" in text


def test_the_origin_facility_is_said_in_hindi(app, client):
    tracking_id = book(client, "hi")
    page = client.get(f"/track/{tracking_id}?lang=hi", headers=HTML).get_data(as_text=True)
    assert "Origin Facility" not in page and "मूल केंद्र" in page
    assert client.get(f"/track/{tracking_id}").get_json()["events"][0]["location"] == "Origin Facility"
    email = rendered(app, tracking_id, "email", "Booked")
    assert "Origin Facility" not in email.body_text and "मूल केंद्र" in email.body_text


def test_booking_and_detail_check_limits_answer_in_hindi(make_config, made_apps):
    from app import create_app

    application = create_app(make_config(RATELIMIT_ENABLED=True, RATELIMIT_CREATE="1 per minute",
                                         RATELIMIT_DETAILS="1 per minute"))
    made_apps.append(application)
    client = application.test_client()
    tracking_id = book(client, "hi")
    held = client.post("/create?lang=hi", json=VALID_BOOKING)
    assert held.status_code == 429
    assert held.get_json()["error"] == "आपके पते से बहुत ज़्यादा बुकिंग की गई हैं; थोड़ी देर बाद फिर से कोशिश करें।"
    for expected in (400, 429):
        answer = client.post(f"/track/{tracking_id}/details?lang=hi", json={"mobile_last4": "x"})
        assert answer.status_code == expected
    assert answer.get_json()["error"] == "आपके पते से बहुत ज़्यादा जाँचें की गई हैं; बाद में फिर से कोशिश करें।"
    assert "per 1 minute" not in answer.get_data(as_text=True)


# --- staff pages in Hindi -----------------------------------------------------------------------------------------

STAFF_PAGES = {  # path → (English that must be gone, Hindi that must be there)
    "/admin": (["Export these as CSV", "Shipments by status", "Print labels for the selected", "Last update"],
               ["इन्हें CSV में निर्यात करें", "स्थिति के अनुसार शिपमेंट", "आख़िरी अपडेट"]),
    "/admin/shipments/{id}": (["Record an update", "Received by", "Why could it not be delivered?",
                               "A hub, city or address", "Photo of the delivery"],
                              ["अपडेट दर्ज करें", "किसने लिया", "डिलीवरी क्यों नहीं हो सकी?", "मूल केंद्र"]),
    "/admin/audit": (["Audit trail", "A username, system or customer", "Every staff and system action"],
                     ["ऑडिट ट्रेल", "कोई यूज़रनेम, system या customer"]),
    "/admin/users": (["Staff accounts", "New staff account", "Last sign-in"], ["स्टाफ़ खाते", "नया स्टाफ़ खाता"]),
    "/admin/notifications": (["No notifications.", "Last error"], ["सूचनाएँ"]),
}


def test_staff_pages_switched_to_hindi_are_hindi(client, auth):
    tracking_id = book(client, "en")
    auth.login("chief", "correct-horse-9", "admin")
    move(client, auth, tracking_id, *TO_THE_DOOR)  # the update form then asks for the proof of delivery
    for path, (english, hindi) in STAFF_PAGES.items():
        page = client.get(path.format(id=tracking_id) + "?lang=hi", headers=HTML)
        assert page.status_code == 200, path
        text = page.get_data(as_text=True)
        assert [phrase for phrase in english if phrase in text] == [], path
        assert [phrase for phrase in hindi if phrase not in text] == [], path
