"""Privacy of public pages (DESIGN.md rule 9): what anyone with a tracking ID or a phone number may see, the staff
note kept internal, and the "show full details" check (last 4 digits of the mobile)."""
from __future__ import annotations

import re
import threading
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app import create_app
from app.domain.privacy import destination_area, first_name_and_initial
from app.domain.timeutil import utcnow
from app.errors import TooManyAttempts
from app.extensions import db
from app.models import DetailCheck, TrackingEvent
from app.services.shipments.detail_checks import (
    CLIENT_LOCK,
    CLIENT_WINDOW,
    SHIPMENT_MAX_MISSES,
    SHIPMENT_WINDOW,
    check_mobile_last4,
    client_key,
)
from tests.conftest import VALID_BOOKING

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
STREET_ADDRESS = "14 Marine Drive, Ernakulam, Kochi 682031"
NOTE = "Courier: Ravi, 98450 12345"
CUSTOMER_MESSAGE = "Collected from the sender this morning"
RIGHT, WRONG = "3210", "0000"  # the booking's mobile is +91 98765 43210
# Strings of the booking that only staff, or a visitor with the proof, may see.
FULL_NAMES = (VALID_BOOKING["sender_name"], VALID_BOOKING["receiver_name"])
PRIVATE = (*FULL_NAMES, "Marine Drive", VALID_BOOKING["email"], "9876543210", "98765", NOTE, "Ravi")


def csrf_from(response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


def assert_nothing_private(response, what: str) -> None:
    """None of the booking's private strings, and no mobile number even masked (a search may echo the number
    it was asked for, masked, and nothing else)."""
    assert response.status_code == 200, what
    text = response.get_data(as_text=True)
    for private in PRIVATE:
        assert private not in text, f"{private!r} on {what}"
    assert "•" not in text.replace("+91 ••••••3210", ""), what


@pytest.fixture
def shipped(client, create_shipment, auth):
    """A shipment to a street address, picked up with a staff note and a message for the customer."""
    tracking_id = create_shipment(destination=STREET_ADDRESS)
    auth.login("desk1")
    response = client.post(f"/update/{tracking_id}", headers=auth.headers(), json={
        "status": "Picked Up", "location": "Mumbai Hub", "note": NOTE, "customer_message": CUSTOMER_MESSAGE})
    assert response.status_code == 200, response.get_json()
    auth.logout()
    return tracking_id


def detail_check_rows(app) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).select_from(DetailCheck))


def form_answer(client, tracking_id: str, digits: str):
    token = csrf_from(client.get(f"/track/{tracking_id}", headers=HTML))
    return client.post(f"/track/{tracking_id}/details", data={"csrf_token": token, "mobile_last4": digits},
                       headers=HTML)


# --- What public answers show --------------------------------------------------------------------------------

def test_public_tracking_json_has_only_the_public_fields(client, shipped):
    body = client.get(f"/track/{shipped}").get_json()
    assert set(body) == {"tracking_id", "status", "sender", "receiver", "destination_city", "pieces", "created_at",
                         "updated_at", "tracking_url", "events", "estimated_delivery",
                         "promised_by"}  # a date, not personal data
    assert (body["sender"], body["receiver"], body["destination_city"]) == ("Asha R.", "Vikram N.", "Kochi")
    assert [set(e) for e in body["events"]] == [{"status", "location", "customer_message", "occurred_at",
                                                  "attempt_reason", "hold_released"}] * 2
    assert body["events"][-1]["customer_message"] == CUSTOMER_MESSAGE
    assert body["events"][-1]["location"] == "Mumbai Hub"


def test_no_public_answer_shows_names_address_contacts_or_notes(client, shipped):
    token = csrf_from(client.get("/", headers=HTML))
    answers = {
        "tracking JSON": client.get(f"/track/{shipped}"),
        "tracking page": client.get(f"/track/{shipped}", headers=HTML),
        "tracking page after booking": client.get(f"/track/{shipped}?booked=1", headers=HTML),
        "live fragment": client.get(f"/track/{shipped}?fragment=timeline", headers=HTML),
        "search JSON": client.get("/search/9876543210"),
        "search page": client.get("/search/9876543210", headers=HTML),
        "search POST JSON": client.post("/search", json={"mobile": "098765 43210"}),
        "search form": client.post("/search", data={"csrf_token": token, "mobile": "98765 43210"}, headers=HTML),
    }
    for what, response in answers.items():
        assert_nothing_private(response, what)
    for what in ("tracking JSON", "tracking page", "live fragment"):
        assert CUSTOMER_MESSAGE in answers[what].get_data(as_text=True), what
    page = answers["tracking page"].get_data(as_text=True)
    assert "From Asha R. to Vikram N. · Kochi" in page
    for what in ("search page", "search form"):
        text = answers[what].get_data(as_text=True)
        assert shipped in text and "To Kochi" in text and "last update" in text


def test_search_by_mobile_shows_id_status_last_update_and_city_only(client, shipped):
    body = client.get("/search/+919876543210").get_json()
    assert body["shipments"] == [{
        "tracking_id": shipped, "status": "Picked Up", "updated_at": body["shipments"][0]["updated_at"],
        "destination_city": "Kochi", "tracking_url": f"http://waybill.test/track/{shipped}"}]
    assert body["shipments"][0]["updated_at"].endswith("Z")


def test_the_tracking_cache_serves_the_public_document_only(make_config, create_shipment, auth):
    """With the per-process cache on (PostgreSQL), the cached body is the same public document."""
    application = create_app(make_config(TRACK_CACHE_ENABLED=True))
    listener = application.extensions.get("waybill_tracking_listener")
    if listener is not None:
        assert listener.connected.wait(10)
    client = application.test_client()
    tracking_id = create_shipment(destination=STREET_ADDRESS)
    first, second = client.get(f"/track/{tracking_id}"), client.get(f"/track/{tracking_id}")
    assert first.data == second.data
    assert_nothing_private(second, "cached tracking JSON")
    from app.services.shipments.tracking_cache import stop_tracking_cache
    stop_tracking_cache(application)


# --- Staff keep the full record ------------------------------------------------------------------------------

def test_staff_answers_keep_the_full_record(client, create_shipment, auth):
    tracking_id = create_shipment(destination=STREET_ADDRESS)
    auth.login()
    updated = client.post(f"/update/{tracking_id}", headers=auth.headers(), json={
        "status": "Picked Up", "location": "Mumbai Hub", "note": NOTE, "customer_message": CUSTOMER_MESSAGE})
    detail = client.get(f"/admin/shipments/{tracking_id}")
    page = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    for body in (updated.get_json(), detail.get_json()):
        assert (body["sender_name"], body["receiver_name"], body["destination"]) == (*FULL_NAMES, STREET_ADDRESS)
        assert (body["email"], body["mobile"]) == (VALID_BOOKING["email"], "+919876543210")
        assert body["events"][-1]["note"] == NOTE
        assert body["events"][-1]["customer_message"] == CUSTOMER_MESSAGE
    for text in (*FULL_NAMES, STREET_ADDRESS, VALID_BOOKING["email"], "+919876543210", NOTE, CUSTOMER_MESSAGE):
        assert text in page, text


def test_the_note_is_staff_only_and_the_customer_message_public(client, create_shipment, auth):
    tracking_id = create_shipment()
    auth.login()
    updated = client.post(f"/update/{tracking_id}", headers=auth.headers(), json={
        "status": "Picked Up", "location": "Mumbai Hub", "note": NOTE, "customer_message": CUSTOMER_MESSAGE})
    assert updated.status_code == 200
    staff_event = updated.get_json()["events"][-1]
    assert (staff_event["note"], staff_event["customer_message"]) == (NOTE, CUSTOMER_MESSAGE)
    assert NOTE in client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    auth.logout()
    public_event = client.get(f"/track/{tracking_id}").get_json()["events"][-1]
    assert public_event["customer_message"] == CUSTOMER_MESSAGE and "note" not in public_event
    for query in ("", "?fragment=timeline"):
        page = client.get(f"/track/{tracking_id}{query}", headers=HTML).get_data(as_text=True)
        assert CUSTOMER_MESSAGE in page and NOTE not in page and "Ravi" not in page


def test_the_staff_form_keeps_note_and_customer_message_apart(client, create_shipment, make_user):
    from tests.test_pages import PASSWORD

    tracking_id = create_shipment()
    make_user("operator1", PASSWORD, "operator")
    token = csrf_from(client.get("/login", headers=HTML))
    client.post("/login", data={"csrf_token": token, "username": "operator1", "password": PASSWORD}, headers=HTML)
    form_page = client.get(f"/admin/shipments/{tracking_id}", headers=HTML)
    text = form_page.get_data(as_text=True)
    assert "The recipient sees it in the email" not in text
    assert 'name="customer_message"' in text and "Message to the customer" in text
    assert "Staff only: never shown on public pages or in emails." in text
    response = client.post(f"/admin/shipments/{tracking_id}", headers=HTML, data={
        "csrf_token": csrf_from(form_page), "status": "Picked Up", "location": "Pune Hub", "note": NOTE,
        "customer_message": CUSTOMER_MESSAGE})
    assert response.status_code == 302
    with client.application.app_context():
        event = db.session.scalars(select(TrackingEvent).order_by(TrackingEvent.id.desc())).first()
        assert (event.note, event.customer_message) == (NOTE, CUSTOMER_MESSAGE)
    client.post("/logout", data={"csrf_token": csrf_from(client.get("/admin", headers=HTML))}, headers=HTML)
    public = client.get(f"/track/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert CUSTOMER_MESSAGE in public and NOTE not in public


def test_customer_message_is_limited_like_the_note(client, create_shipment, auth, app):
    tracking_id = create_shipment()
    auth.login()
    response = client.post(f"/update/{tracking_id}", headers=auth.headers(), json={
        "status": "Picked Up", "location": "X", "customer_message": "m" * 501})
    assert response.status_code == 400 and "customer_message" in response.get_json()["fields"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TrackingEvent)) == 1


# --- "Show full details" -------------------------------------------------------------------------------------

def test_the_right_last_4_digits_show_full_details_for_this_session_only(client, app, shipped):
    locked_page = client.get(f"/track/{shipped}", headers=HTML)
    locked_etag = locked_page.headers["ETag"]
    assert "Show full details" in locked_page.get_data(as_text=True)

    response = form_answer(client, shipped, f" {RIGHT} ")
    assert response.status_code == 303 and response.headers["Location"] == f"/track/{shipped}"

    unlocked = client.get(f"/track/{shipped}", headers={**HTML, "If-None-Match": locked_etag})
    assert unlocked.status_code == 200  # not the locked page's 304
    page = unlocked.get_data(as_text=True)
    for text in (*FULL_NAMES, STREET_ADDRESS):
        assert text in page, text
    assert NOTE not in page and VALID_BOOKING["email"] not in page and "98765" not in page
    assert unlocked.headers["Cache-Control"] == "private, no-store" and "ETag" not in unlocked.headers
    assert "Cookie" in unlocked.headers["Vary"]

    # The JSON document and the live fragment stay the public ones, even for this session.
    assert_nothing_private(client.get(f"/track/{shipped}"), "tracking JSON after the proof")
    assert_nothing_private(client.get(f"/track/{shipped}?fragment=timeline", headers=HTML), "fragment")
    # Another browser session sees the public page.
    assert_nothing_private(app.test_client().get(f"/track/{shipped}", headers=HTML), "another session")


def test_the_check_as_json_answers_the_full_details(client, app, shipped):
    response = client.post(f"/track/{shipped.lower()}/details", json={"mobile_last4": RIGHT})
    assert response.status_code == 200
    assert response.get_json() == {"tracking_id": shipped, "sender_name": FULL_NAMES[0],
                                   "receiver_name": FULL_NAMES[1], "destination": STREET_ADDRESS}
    assert response.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("digits", ["", "   ", "321", "32100", "abcd", "32 10", "٣٢١٠", "3210\u0000"])
def test_anything_but_4_digits_is_a_400_and_counts_no_miss(client, app, shipped, digits):
    json_answer = client.post(f"/track/{shipped}/details", json={"mobile_last4": digits})
    assert json_answer.status_code == 400 and "mobile_last4" in json_answer.get_json()["fields"]
    page = form_answer(client, shipped, digits)
    assert page.status_code == 400
    if "\x00" in digits:  # refused by the app-wide input check before the view: the error page names it
        assert "Control characters" in page.get_data(as_text=True)
    else:
        assert 'id="mobile_last4-error"' in page.get_data(as_text=True)
    assert_nothing_private(client.get(f"/track/{shipped}", headers=HTML), "page after a bad answer")
    assert detail_check_rows(app) == 0


def test_the_check_needs_csrf_from_a_form_and_a_known_id(client, app, shipped):
    assert client.post(f"/track/{shipped}/details", data={"mobile_last4": RIGHT}).status_code == 400
    assert client.post("/track/FFFFFFFF/details", json={"mobile_last4": RIGHT}).status_code == 404
    assert client.post(f"/track/{shipped}/details", json={"mobile_last4": RIGHT, "x": "1"}).status_code == 400
    assert_nothing_private(client.get(f"/track/{shipped}", headers=HTML), "page after refused calls")


def test_five_misses_lock_the_check_for_15_minutes(client, app, shipped):
    for left in (4, 3, 2, 1):
        response = client.post(f"/track/{shipped}/details", json={"mobile_last4": WRONG})
        assert response.status_code == 403
        assert response.get_json()["misses_left"] == left
    fifth = form_answer(client, shipped, WRONG)
    assert fifth.status_code == 429 and 895 <= int(fifth.headers["Retry-After"]) <= 900
    assert "locked" in fifth.get_data(as_text=True)
    # Locked: even the right digits are refused, without being compared; nothing is revealed.
    for response in (client.post(f"/track/{shipped}/details", json={"mobile_last4": RIGHT}),
                     form_answer(client, shipped, RIGHT)):
        assert response.status_code == 429 and 0 < int(response.headers["Retry-After"]) <= 900
    assert "try again in 15 minutes" in response.get_data(as_text=True)
    assert_nothing_private(client.get(f"/track/{shipped}", headers=HTML), "page while locked")


def test_the_lock_and_the_miss_window_expire(app_ctx, shipped):
    now = utcnow()
    client = "203.0.113.5"
    for _ in range(4):
        assert not check_mobile_last4(shipped, WRONG, client=client, now=now).unlocked
    # The fifth miss comes after the 15-minute window: the count starts again instead of locking.
    later = now + CLIENT_WINDOW + timedelta(seconds=1)
    assert check_mobile_last4(shipped, WRONG, client=client, now=later).misses_left == 4
    for _ in range(3):
        check_mobile_last4(shipped, WRONG, client=client, now=later)
    locking = check_mobile_last4(shipped, WRONG, client=client, now=later)
    assert locking.retry_after == CLIENT_LOCK.total_seconds() and locking.misses_left == 0
    with pytest.raises(TooManyAttempts):
        check_mobile_last4(shipped, RIGHT, client=client, now=later + CLIENT_LOCK - timedelta(seconds=1))
    assert check_mobile_last4(shipped, RIGHT, client=client, now=later + CLIENT_LOCK).unlocked
    db.session.commit()
    shipment_id = db.session.scalar(select(TrackingEvent.shipment_id).limit(1))
    row = db.session.get(DetailCheck, (shipment_id, client_key(client)))
    assert (row.misses, row.window_started_at, row.locked_until) == (0, None, None)


def test_one_clients_misses_do_not_lock_the_shipment_for_other_clients(app, shipped):
    """The attack run's finding: five wrong answers from anyone used to lock the real recipient out too."""
    guesser, recipient = ({"REMOTE_ADDR": address} for address in ("198.51.100.7", "203.0.113.9"))
    client = app.test_client()
    for _ in range(4):
        assert client.post(f"/track/{shipped}/details", json={"mobile_last4": WRONG},
                           environ_base=guesser).status_code == 403
    locking = client.post(f"/track/{shipped}/details", json={"mobile_last4": WRONG}, environ_base=guesser)
    assert locking.status_code == 429
    assert client.post(f"/track/{shipped}/details", json={"mobile_last4": RIGHT},
                       environ_base=guesser).status_code == 429
    other = app.test_client()
    assert other.post(f"/track/{shipped}/details", json={"mobile_last4": RIGHT},
                      environ_base=recipient).status_code == 200
    assert detail_check_rows(app) == 3  # the shipment's row, the guesser's and the recipient's


def test_the_shipment_ceiling_across_clients_closes_the_check_for_the_day(app, shipped):
    """Many addresses, each under its own limit, get SHIPMENT_MAX_MISSES wrong answers a day between them: then
    nobody may answer (a right answer neither passes nor resets the count) until the day's window ends."""
    now = utcnow()
    with app.app_context():
        for n in range(SHIPMENT_MAX_MISSES - 1):
            proof = check_mobile_last4(shipped, WRONG, client=f"198.51.100.{n // 4}", now=now)
            assert not proof.unlocked and not proof.closed_for_everyone
        assert check_mobile_last4(shipped, RIGHT, client="203.0.113.9", now=now).unlocked
        last = check_mobile_last4(shipped, WRONG, client="192.0.2.1", now=now)
        assert last.closed_for_everyone and last.retry_after == SHIPMENT_WINDOW.total_seconds()
        with pytest.raises(TooManyAttempts):
            check_mobile_last4(shipped, RIGHT, client="203.0.113.10", now=now + SHIPMENT_WINDOW / 2)
        db.session.commit()
    refused = app.test_client().post(f"/track/{shipped}/details", json={"mobile_last4": RIGHT},
                                     environ_base={"REMOTE_ADDR": "203.0.113.11"})
    assert refused.status_code == 429 and 0 < int(refused.headers["Retry-After"]) <= 86400
    assert "closed for 24 hours" in refused.get_json()["error"]
    with app.app_context():
        assert check_mobile_last4(shipped, RIGHT, client="203.0.113.10", now=now + SHIPMENT_WINDOW).unlocked
        db.session.commit()


def test_the_answer_that_reaches_the_ceiling_says_so_in_the_page(app, shipped):
    now = utcnow()
    with app.app_context():
        for n in range(SHIPMENT_MAX_MISSES - 1):
            check_mobile_last4(shipped, WRONG, client=f"198.51.100.{n // 4}", now=now)
        db.session.commit()
    page = form_answer(app.test_client(), shipped, WRONG)
    assert page.status_code == 429
    assert "too many wrong answers today: the check is closed for 24 hours" in page.get_data(as_text=True)


def test_a_right_answer_clears_the_misses(client, shipped):
    for _ in range(4):
        assert client.post(f"/track/{shipped}/details", json={"mobile_last4": WRONG}).status_code == 403
    assert client.post(f"/track/{shipped}/details", json={"mobile_last4": RIGHT}).status_code == 200
    miss = client.post(f"/track/{shipped}/details", json={"mobile_last4": WRONG})
    assert miss.status_code == 403 and miss.get_json()["misses_left"] == 4


def test_misses_add_up_across_processes_and_concurrent_requests(make_config, create_shipment, app):
    """Two apps on one database (as two Gunicorn workers would be), eight wrong answers at once: exactly four
    are told "wrong", the fifth locks the check and the rest find it locked."""
    tracking_id = create_shipment()
    other = create_app(make_config())
    statuses: list[int] = []
    barrier = threading.Barrier(8)

    def answer(application):
        client = application.test_client()
        barrier.wait()
        statuses.append(client.post(f"/track/{tracking_id}/details", json={"mobile_last4": WRONG}).status_code)

    threads = [threading.Thread(target=answer, args=(app if n % 2 else other,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sorted(statuses) == [403] * 4 + [429] * 4
    with other.app_context():
        db.engine.dispose()


def test_the_check_has_a_per_client_limit(make_config, create_shipment):
    limited = create_app(make_config(RATELIMIT_ENABLED=True, RATELIMIT_DETAILS="3 per minute"))
    client = limited.test_client()
    first, second = create_shipment(), create_shipment(mobile="+91 91234 56789")
    for tracking_id in (first, second, first):  # the limit is the client's, across shipments
        assert client.post(f"/track/{tracking_id}/details", json={"mobile_last4": WRONG}).status_code == 403
    refused = client.post(f"/track/{second}/details", json={"mobile_last4": WRONG})
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) > 0
    assert limited.test_client(use_cookies=False).get(f"/track/{first}").status_code == 200
    from app.extensions import limiter
    with limited.app_context():
        limiter.reset()


# --- The pure rules ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("full, short", [
    ("Vikram Nair", "Vikram N."), ("Asha", "Asha"), ("  meera   s  iyer ", "meera I."), ("", ""),
    ("A. P. J. Abdul Kalam", "A. K."),
])
def test_first_name_and_initial(full, short):
    assert first_name_and_initial(full) == short


@pytest.mark.parametrize("destination, area", [
    ("Kochi", "Kochi"),
    (STREET_ADDRESS, "Kochi"),
    ("12 MG Road, Indiranagar, Bengaluru, Karnataka - 560038, India", "Bengaluru"),
    ("Flat 2B\nSea View Apartments\nKochi", "Kochi"),
    ("Kochi PIN: 682 031", "Kochi"),
    ("14 Marine Drive 682031", "PIN 682031"),
    ("Flat 2B, 14 Marine Drive", None),
    ("12 Beach Road, Kerala", "Kerala"),
    ("", None),
])
def test_destination_area(destination, area):
    assert destination_area(destination) == area

