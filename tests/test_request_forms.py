"""One way to read a request's fields (app/web/forms.py): a RequestForm, filled from the browser's form or the JSON
object, its refusals a 400 with `fields` (field_errors), shown beside the fields on a page (refused_on_page). Every
view that takes a body reads it so: a bad JSON body is refused naming its field, and nothing is written."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select
from wtforms import BooleanField, IntegerField, SelectMultipleField, StringField

from app.errors import ValidationError
from app.extensions import db
from app.models import AuditEntry, NotificationDefault, TrackingEvent, User, WebhookSubscription
from app.web.forms import (
    NOT_A_BOOLEAN,
    NOT_A_LIST,
    NOT_A_NUMBER,
    NOT_A_STRING,
    REQUIRED_IN_JSON,
    UNKNOWN_FIELD,
    RequestForm,
    RequiredInJson,
    TextListField,
    TrueFalseField,
    field_errors,
    read_form,
)

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}


class SampleForm(RequestForm):
    name = StringField()
    tags = TextListField()
    count = IntegerField()
    active = TrueFalseField()
    urgent = BooleanField()
    kinds = SelectMultipleField(choices=["a", "b"], validators=[RequiredInJson()])


# --- the form, without a view ---------------------------------------------------------------------------------

def test_a_json_object_fills_the_form_as_the_browser_form_does(app):
    body = {"name": "Ravi", "tags": ["x", "y"], "count": 3, "active": False, "urgent": True, "kinds": []}
    with app.test_request_context("/", method="POST", json=body):
        form = read_form(SampleForm)
    assert (form.name.data, form.tags.data, form.count.data, form.active.data, form.urgent.data, form.kinds.data) \
        == ("Ravi", ["x", "y"], 3, False, True, [])
    assert form.json_fields == frozenset(body)
    with app.test_request_context("/", method="POST", data={"name": "Ravi", "tags": ["x", "y"], "count": "3",
                                                            "active": "false", "urgent": "y"}):
        form = read_form(SampleForm)  # a browser form leaves out a list whose boxes are all unchecked
    assert (form.name.data, form.tags.data, form.count.data, form.active.data, form.urgent.data, form.kinds.data) \
        == ("Ravi", ["x", "y"], 3, False, True, [])
    assert form.json_fields is None


@pytest.mark.parametrize("body, field, message", [
    ({"name": 3, "kinds": []}, "name", NOT_A_STRING),
    ({"tags": "x", "kinds": []}, "tags", NOT_A_LIST),
    ({"tags": ["x", 1], "kinds": []}, "tags", NOT_A_LIST),
    ({"tags": 3, "kinds": []}, "tags", NOT_A_LIST),
    ({"count": {"n": 3}, "kinds": []}, "count", NOT_A_NUMBER),
    ({"count": True, "kinds": []}, "count", NOT_A_NUMBER),
    ({"active": "false", "kinds": []}, "active", NOT_A_BOOLEAN),
    ({"urgent": 1, "kinds": []}, "urgent", NOT_A_BOOLEAN),
    ({"nickname": "r", "kinds": []}, "nickname", UNKNOWN_FIELD),
    ({"name": "Ravi"}, "kinds", REQUIRED_IN_JSON),
    ({"kinds": ["c"]}, "kinds", None),
    ({"count": "many", "kinds": []}, "count", None),
])
def test_a_bad_json_value_is_a_validation_error_naming_its_field(app, body, field, message):
    with app.test_request_context("/", method="POST", json=body), pytest.raises(ValidationError) as refused:
        read_form(SampleForm)
    assert list(refused.value.fields) == [field]
    assert message is None or refused.value.fields[field] == message


@pytest.mark.one_database
def test_wtforms_own_messages_are_read_once_a_process_and_language(app):
    """Flask-WTF reads WTForms' catalogue for every request that builds a form; ours keeps it per language."""
    from app.web.forms import _wtforms_messages

    for language in ("en", "hi", "en"):
        with app.test_request_context(f"/?lang={language}", method="POST", data={"count": "x"}):
            form = SampleForm.from_request()
            assert not form.validate() and form.errors["count"]  # WTForms' own message, translated or not
    assert _wtforms_messages.cache_info().currsize >= 2
    before = _wtforms_messages.cache_info().misses
    with app.test_request_context("/?lang=hi", method="POST", data={"count": "y"}):
        SampleForm.from_request().validate()
    assert _wtforms_messages.cache_info().misses == before


def test_field_errors_are_each_fields_first_message(app):
    with app.test_request_context("/", method="POST", data={"active": "maybe", "count": "x"}):
        form = SampleForm.from_request()
        assert not form.validate()
        assert field_errors(form) == {"count": "Not a valid integer value.", "active": NOT_A_BOOLEAN}


# --- every view that takes a body ---------------------------------------------------------------------------------

def written(app) -> tuple:
    with app.app_context():
        counts = tuple(db.session.scalar(select(func.count()).select_from(model))
                       for model in (AuditEntry, TrackingEvent, WebhookSubscription, NotificationDefault))
        return counts, tuple(db.session.execute(select(User.username, User.role, User.active)).all())


BAD_BODIES = [
    ("/admin/users/ravi", {"role": "viewer", "nickname": "r"}, "nickname"),
    ("/admin/users/ravi", {"active": "no"}, "active"),
    ("/admin/users/ravi", {"password": 12}, "password"),
    ("/admin/users/ravi", {"password": ""}, "password"),
    ("/admin/webhooks", {"url": "https://hooks.example.com/x", "events": "shipment.created"}, "events"),
    ("/admin/webhooks", {"url": 3, "events": ["shipment.created"]}, "url"),
    ("/admin/webhooks/1/rotate", {"overlap_hours": "soon"}, "overlap_hours"),
    ("/admin/webhooks/1/rotate", {"overlap_hours": True}, "overlap_hours"),
    ("/admin/labels.pdf", {"tracking_ids": "AB12CD34"}, "tracking_ids"),
    ("/admin/labels.pdf", {"tracking_ids": ["{id}"], "size": 6}, "size"),
    ("/admin/scans", {"status": "Picked Up", "location": "Hub", "tracking_ids": [1]}, "tracking_ids"),
    ("/admin/scans", {"status": "Picked Up", "location": "Hub", "tracking_ids": ["{id}", ""]}, "tracking_ids"),
    ("/admin/notifications/defaults", {"channel": "sms"}, "statuses"),
    ("/admin/notifications/defaults", {"channel": ["sms"], "statuses": []}, "channel"),
    ("/admin/shipments/{id}", {"status": "Picked Up", "location": 5}, "location"),
    ("/admin/shipments/{id}", {"status": "Picked Up"}, "location"),
    ("/update/{id}", {"status": "Picked Up", "location": "Hub", "received_by": ["Ravi"]}, "received_by"),
    ("/admin/api-keys", {"name": "scanner", "username": "ravi", "expires_at": 2027}, "expires_at"),
]


@pytest.mark.parametrize("path, body, field", BAD_BODIES)
def test_a_bad_json_body_is_a_400_naming_its_field_and_writes_nothing(app, client, auth, make_user,
                                                                     create_shipment, path, body, field):
    tracking_id = create_shipment()
    make_user("ravi")
    auth.login("boss", role="admin")
    before = written(app)
    body = {name: ([item.format(id=tracking_id) for item in value] if isinstance(value, list) and value
                   and isinstance(value[0], str) else value) for name, value in body.items()}
    response = client.post(path.format(id=tracking_id), json=body, headers=auth.headers())
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert field in response.get_json()["fields"], response.get_json()
    assert written(app) == before


def test_the_account_page_and_json_refuse_an_empty_password_alike(app, client, auth, make_user):
    make_user("ravi")
    auth.login("boss", role="admin")
    before = written(app)
    answer = client.post("/admin/users/ravi", json={"password": ""}, headers=auth.headers())
    assert answer.status_code == 400 and answer.get_json()["fields"] == {"password": "Enter a new password."}
    page = client.post("/admin/users/ravi", data={"csrf_token": auth.csrf_token, "password": ""}, headers=HTML)
    assert page.status_code == 400 and "Enter a new password." in page.get_data(as_text=True)
    assert client.post("/admin/users/ravi", json={}, headers=auth.headers()).get_json()["error"] == (
        "Send at least one of role, active, password, or a courier's name, vehicle, capacity, shift_start, "
        "shift_end.")
    assert written(app) == before


def test_the_scan_page_shows_a_missing_receiver_beside_its_field(app, client, auth, create_shipment):
    tracking_id = create_shipment()
    auth.login()
    for status in ("Picked Up", "In Transit", "Out for Delivery"):
        client.post(f"/update/{tracking_id}", json={"status": status, "location": "Hub"}, headers=auth.headers())
    before = written(app)
    page = client.post("/admin/scan", headers=HTML, data={"csrf_token": auth.csrf_token, "status": "Delivered",
                                                          "location": "Kochi", "tracking_id": tracking_id})
    assert page.status_code == 400
    assert 'id="received_by-error"' in page.get_data(as_text=True)
    assert written(app) == before
