"""Privacy of public pages (DESIGN.md rule 9): the staff note kept internal, apart from the customer's message."""
from __future__ import annotations

import re

from sqlalchemy import func, select

from app.extensions import db
from app.models import TrackingEvent

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
NOTE = "Courier: Ravi, 98450 12345"
CUSTOMER_MESSAGE = "Collected from the sender this morning"


def csrf_from(response) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', response.get_data(as_text=True))
    assert match, "no CSRF token on the page"
    return match.group(1)


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
