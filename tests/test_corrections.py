"""Corrections to a booking (POST /admin/shipments/<id>/edit and the staff page's "Edit" form): each field, the
cut-offs, re-pricing, the audit row without contacts, refusals that change nothing, the next message going to
the new contacts, who may do it, and the page's form."""
from __future__ import annotations

import json
import re
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from app.domain.corrections import EDITABLE_FIELDS, PARCEL_EDIT_FIELDS, RECEIVER_FIELDS, editable_fields
from app.domain.parcels import Parcel
from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import AuditEntry, Notification, Shipment
from app.services.shipments import corrections
from app.services.shipments.booking import NewShipment, create_shipment
from app.services.shipments.serviceability import ServiceabilityRow, replace_all
from app.services.shipments.status_changes import record_status_change
from app.services.staff.audit import REDACTED
from tests.api_support import NEW, book

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
TO_OUT_FOR_DELIVERY = ("Picked Up", "In Transit", "Out for Delivery")


def edit(client, auth, tracking_id: str, **changes):
    return client.post(f"/admin/shipments/{tracking_id}/edit", json=changes, headers=auth.headers())


def stored(app, tracking_id: str) -> dict:
    """The shipment's row, every column, as stored."""
    with app.app_context():
        shipment = db.session.scalars(select(Shipment).where(Shipment.tracking_id == tracking_id)).one()
        return {column.name: getattr(shipment, column.name) for column in Shipment.__table__.columns}


def edits(app) -> list[AuditEntry]:
    with app.app_context():
        return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == "shipment_edited")
                                       .order_by(AuditEntry.id)))


def money(amount: str) -> str:
    """An amount as the audit writes it: "1,309.80"."""
    return format(Decimal(amount), ",.2f")


def book_parcel(app, *statuses: str, **parcel) -> str:
    with app.app_context():
        tracking_id = create_shipment(NewShipment(NEW.sender_name, NEW.receiver_name, NEW.mobile, NEW.email,
                                                  NEW.destination, parcel=Parcel(**parcel)), actor="setup").tracking_id
        for status in statuses:
            record_status_change(tracking_id, status, "Hub", None, actor="setup")
        db.session.commit()
    return tracking_id


@pytest.fixture
def operator(auth):
    auth.login("ravi", role="operator")
    return auth


# --- the cut-offs, as data ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("status, held_from, editable", [
    ("Booked", None, EDITABLE_FIELDS),
    ("In Transit", None, EDITABLE_FIELDS),
    ("On Hold", "In Transit", EDITABLE_FIELDS),
    ("Out for Delivery", None, PARCEL_EDIT_FIELDS),
    ("Delivery Attempted", None, PARCEL_EDIT_FIELDS),
    ("On Hold", "Out for Delivery", PARCEL_EDIT_FIELDS),
    ("RTO Initiated", None, PARCEL_EDIT_FIELDS),
    ("RTO In Transit", None, PARCEL_EDIT_FIELDS),
    ("Delivered", None, ()),
    ("Returned to Sender", None, ()),
    ("Cancelled", None, ()),
])
def test_what_may_still_be_corrected_by_status(status, held_from, editable):
    assert editable_fields(status, held_from) == editable
    assert set(RECEIVER_FIELDS) | set(PARCEL_EDIT_FIELDS) == set(EDITABLE_FIELDS)


# --- each field ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("field, sent, kept", [
    ("receiver_name", "Vikram Menon", "Vikram Menon"),
    ("mobile", "098470 12345", "+919847012345"),
    ("email", "vikram.n@example.org", "vikram.n@example.org"),
    ("email", "", None),
    ("destination", "22 Beach Road, Ernakulam, Kochi", "22 Beach Road, Ernakulam, Kochi"),
    ("destination_pincode", "682016", "682016"),
    ("weight_kg", 3.25, Decimal("3.25")),
    ("pieces", 3, 3),
    ("declared_value", "2500", Decimal("2500.00")),
    ("service", "express", "express"),
])
def test_each_field_is_corrected(app, client, operator, field, sent, kept):
    tracking_id = book(app)
    response = edit(client, operator, tracking_id, **{field: sent})
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["changed"] == [field] and body["tracking_id"] == tracking_id
    assert stored(app, tracking_id)[field] == kept
    assert len(edits(app)) == 1


def test_the_sides_and_cash_on_delivery_are_corrected_together(app, client, operator):
    tracking_id = book(app)
    response = edit(client, operator, tracking_id, length_cm="40", width_cm=30, height_cm="20.04",
                    payment="cod", cod_amount="1,500")
    assert response.status_code == 200, response.get_json()
    assert sorted(response.get_json()["changed"]) == ["cod_amount", "height_cm", "length_cm", "payment", "width_cm"]
    row = stored(app, tracking_id)
    assert (row["length_cm"], row["width_cm"], row["height_cm"]) == (Decimal("40"), Decimal("30"), Decimal("20.0"))
    assert (row["payment"], row["cod_amount"]) == ("cod", Decimal("1500.00"))
    assert row["charges"]["cod_fee"] == "40.00"

    # Back to prepaid: the amount to collect goes with it unless it is sent.
    response = edit(client, operator, tracking_id, payment="prepaid")
    assert response.status_code == 200, response.get_json()
    assert sorted(response.get_json()["changed"]) == ["cod_amount", "payment"]
    row = stored(app, tracking_id)
    assert (row["payment"], row["cod_amount"], row["charges"]["cod_fee"]) == ("prepaid", None, "0.00")


def test_nothing_changed_writes_nothing(app, client, operator):
    tracking_id = book(app)
    before = stored(app, tracking_id)
    response = edit(client, operator, tracking_id, mobile="+91 98765 43210", receiver_name=" Vikram Nair ",
                    email="vikram@example.com", pieces="1")
    assert response.status_code == 200
    assert response.get_json()["changed"] == []
    assert stored(app, tracking_id) == before
    assert edits(app) == []


def test_an_admin_may_correct_too(app, client, auth):
    tracking_id = book(app)
    auth.login("chief", role="admin")
    assert edit(client, auth, tracking_id, receiver_name="Vikram N. Nair").status_code == 200


# --- the cut-offs -------------------------------------------------------------------------------------------------

def test_contacts_are_fixed_from_out_for_delivery_but_the_parcel_is_not(app, client, operator):
    tracking_id = book(app, *TO_OUT_FOR_DELIVERY)
    before = stored(app, tracking_id)
    for change in ({"mobile": "+91 98470 12345"}, {"destination": "Thrissur"}, {"email": ""},
                   {"receiver_name": "Someone Else", "weight_kg": 2}):
        response = edit(client, operator, tracking_id, **change)
        assert response.status_code == 409, change
        body = response.get_json()
        assert "Out for Delivery" in body["error"] and next(iter(change)) in body["error"]
        assert body["current_status"] == "Out for Delivery" and body["fixed"] == [next(iter(change))]
    assert stored(app, tracking_id) == before and edits(app) == []

    # The parcel may still be corrected (weighed again at the hub); an unchanged contact sent along is no change.
    response = edit(client, operator, tracking_id, weight_kg="2.5", mobile="9876543210")
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["changed"] == ["weight_kg"]


def test_contacts_stay_fixed_on_hold_after_out_for_delivery_and_on_the_return_leg(app, client, operator):
    held = book(app, *TO_OUT_FOR_DELIVERY, "On Hold")
    response = edit(client, operator, held, destination="Thrissur")
    assert response.status_code == 409
    assert "On Hold (held from Out for Delivery)" in response.get_json()["error"]
    returning = book(app, "Picked Up", "On Hold", "RTO Initiated")
    assert edit(client, operator, returning, destination="Thrissur").status_code == 409
    assert edit(client, operator, returning, pieces=2).status_code == 200


def test_the_parcel_is_fixed_once_delivered(app, client, operator):
    tracking_id = book(app, *TO_OUT_FOR_DELIVERY, "Delivered")
    before = stored(app, tracking_id)
    response = edit(client, operator, tracking_id, weight_kg=4)
    assert response.status_code == 409
    body = response.get_json()
    assert "Delivered" in body["error"] and "weight_kg" in body["error"] and body["fixed"] == ["weight_kg"]
    response = edit(client, operator, tracking_id, receiver_name="Someone Else", service="express")
    assert response.status_code == 409
    assert response.get_json()["fixed"] == ["receiver_name", "service"]
    assert "Out for Delivery" in response.get_json()["error"]
    assert stored(app, tracking_id) == before and edits(app) == []

    cancelled = book(app, "Cancelled")
    assert edit(client, operator, cancelled, pieces=2).status_code == 409


# --- prices -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("change", [{"weight_kg": 5}, {"service": "express"}, {"destination_pincode": "560034"},
                                    {"length_cm": 50, "width_cm": 40, "height_cm": 30}])
def test_a_pricing_change_prices_the_booking_again(app, client, operator, change):
    tracking_id = book(app)
    before = stored(app, tracking_id)
    response = edit(client, operator, tracking_id, **change)
    assert response.status_code == 200, response.get_json()
    after = stored(app, tracking_id)
    assert after["charges"] != before["charges"] and after["rate_card_version"] == 1
    assert response.get_json()["charges"] == after["charges"]
    assert after["updated_at"] > before["updated_at"]
    [entry] = edits(app)
    assert entry.details["charges_total"] == {"from": money(before["charges"]["total"]),
                                              "to": money(after["charges"]["total"])}


def test_a_name_change_does_not_price_again(app, client, operator):
    tracking_id = book(app)
    before = stored(app, tracking_id)
    assert edit(client, operator, tracking_id, receiver_name="Vikram Menon", destination="Ernakulam, Kochi",
                pieces=2).status_code == 200
    after = stored(app, tracking_id)
    assert after["charges"] == before["charges"]
    [entry] = edits(app)
    assert "charges_total" not in entry.details


# --- the audit row ------------------------------------------------------------------------------------------------

def test_the_audit_row_lists_old_and_new_values_without_contacts(app, client, operator):
    tracking_id = book(app)
    response = edit(client, operator, tracking_id, mobile="+91 98470 12345", email="new.address@example.org",
                    receiver_name="Vikram Menon", weight_kg="2.5", declared_value="25000")
    assert response.status_code == 200, response.get_json()
    [entry] = edits(app)
    assert (entry.actor, entry.target_type, entry.target_id) == ("ravi", "shipment", tracking_id)
    details = entry.details
    assert details["receiver_mobile"] == {"from": "+91 ••••••3210", "to": "+91 ••••••2345"}
    assert details["receiver_email"] == {"from": REDACTED, "to": REDACTED}
    assert details["receiver_name"] == {"from": "Vikram Nair", "to": "Vikram Menon"}
    assert details["weight_kg"] == {"from": None, "to": "2.5"}
    assert details["declared_value"] == {"from": None, "to": "25,000.00"}
    text = json.dumps(details, ensure_ascii=False)
    for secret in ("vikram@example.com", "new.address@example.org", "9876543210", "9847012345", "98470"):
        assert secret not in text

    html = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert "Shipment edited" in html and "Receiver name: Vikram Nair → Vikram Menon" in html
    assert "Declared value: — → 25,000.00" in html


# --- refusals -----------------------------------------------------------------------------------------------------

def test_invalid_values_are_400_with_fields_and_change_nothing(app, client, operator):
    tracking_id = book(app)
    before = stored(app, tracking_id)
    response = edit(client, operator, tracking_id, receiver_name="  ", mobile="12", email="not-an-address",
                    destination="", weight_kg="heavy", pieces=0, service="overnight", length_cm=10)
    assert response.status_code == 400
    fields = response.get_json()["fields"]
    assert set(fields) == {"receiver_name", "mobile", "email", "destination", "weight_kg", "pieces", "service",
                           "width_cm", "height_cm"}
    assert stored(app, tracking_id) == before and edits(app) == []


@pytest.mark.parametrize("body, field", [
    ({"status": "Delivered"}, "status"),
    ({"contents": "Books"}, "contents"),
    ({"mobile": 9876543210}, "mobile"),
    ({"weight_kg": True}, "weight_kg"),
    ({"payment": "cod"}, "cod_amount"),
    ({"cod_amount": "100"}, "cod_amount"),
    ({"destination_pincode": "012345"}, "destination_pincode"),
    ({"destination_pincode": "999999"}, "destination_pincode"),
])
def test_unknown_fields_and_bad_combinations_are_400(app, client, operator, body, field):
    tracking_id = book(app)
    before = stored(app, tracking_id)
    response = client.post(f"/admin/shipments/{tracking_id}/edit", json=body, headers=operator.headers())
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    assert stored(app, tracking_id) == before and edits(app) == []


def test_cash_on_delivery_where_it_is_not_offered_is_422(app, client, operator):
    with app.app_context():
        replace_all([ServiceabilityRow(2, {"pincode": "682016", "cod": "yes", "express": "yes"}),
                     ServiceabilityRow(3, {"pincode": "110001", "cod": "no", "express": "yes"})], actor="chief")
        db.session.commit()
    tracking_id = book_parcel(app, destination_pincode="110001")
    before = stored(app, tracking_id)
    response = edit(client, operator, tracking_id, payment="cod", cod_amount=500)
    assert response.status_code == 422
    assert "payment" in response.get_json()["fields"]
    response = edit(client, operator, tracking_id, destination_pincode="560034")
    assert response.status_code == 422 and "destination_pincode" in response.get_json()["fields"]
    response = edit(client, operator, tracking_id, destination_pincode="")
    assert response.status_code == 422 and "destination_pincode" in response.get_json()["fields"]
    assert stored(app, tracking_id) == before and edits(app) == []
    # Where it is offered, the same change goes through.
    response = edit(client, operator, tracking_id, destination_pincode="682016", payment="cod", cod_amount=500)
    assert response.status_code == 200, response.get_json()


def test_an_unknown_shipment_is_404(client, operator):
    assert edit(client, operator, "FFFFFFFF", pieces=2).status_code == 404


def test_a_status_change_that_lands_first_is_checked_against(app, monkeypatch):
    """The correction read In Transit; Out for Delivery is written before its own write: it reads again, and the
    new mobile is refused. A write that only moved updated_at (another correction) is simply retried."""
    tracking_id = book(app, "Picked Up", "In Transit")
    real, calls = corrections._compare_and_set, []

    def racing(values: dict) -> dict:
        def compare_and_set(shipment, changes):
            if not calls:
                # As another transaction would: the row changes, the object this correction read does not.
                db.session.execute(update(Shipment.__table__).where(Shipment.__table__.c.id == shipment.id)
                                   .values(**values))
            calls.append(changes)
            return real(shipment, changes)
        return compare_and_set

    monkeypatch.setattr(corrections, "_compare_and_set", racing({"status": "Out for Delivery", "updated_at": utcnow()}))
    with app.app_context():
        with pytest.raises(corrections.CorrectionRefused):
            corrections.edit_shipment(tracking_id, {"mobile": "+91 98470 12345"}, actor="ravi")
        db.session.rollback()
    assert len(calls) == 1

    calls.clear()
    monkeypatch.setattr(corrections, "_compare_and_set", racing({"updated_at": utcnow()}))
    with app.app_context():
        shipment, changed = corrections.edit_shipment(tracking_id, {"mobile": "+91 98470 12345"}, actor="ravi")
        db.session.commit()
    assert len(calls) == 2 and list(changed) == ["mobile"] and stored(app, tracking_id)["mobile"] == "+919847012345"
    assert len(edits(app)) == 1


def test_the_public_tracking_document_follows_a_correction(app, client, operator):
    tracking_id = book(app)
    body = client.get(f"/track/{tracking_id}").get_json()
    assert (body["receiver"], body["destination_city"]) == ("Vikram N.", "Kochi")
    assert edit(client, operator, tracking_id, receiver_name="Arjun Menon",
                destination="5 Park Street, Thrissur").status_code == 200
    body = client.get(f"/track/{tracking_id}").get_json()
    assert (body["receiver"], body["destination_city"]) == ("Arjun M.", "Thrissur")


# --- the next message ---------------------------------------------------------------------------------------------

def test_the_next_message_goes_to_the_new_mobile_and_email(app, client, operator):
    tracking_id = book(app, "Picked Up", "In Transit")
    response = edit(client, operator, tracking_id, email="vikram.n@example.org", mobile="+91 98470 12345")
    assert response.status_code == 200, response.get_json()
    with app.app_context():
        _shipment, event = record_status_change(tracking_id, "Out for Delivery", "Kochi Hub", None, actor="ravi")
        db.session.commit()
        recipients = dict(db.session.execute(select(Notification.channel, Notification.recipient)
                                             .where(Notification.event_id == event.id)).all())
    assert recipients == {"email": "vikram.n@example.org", "sms": "+919847012345"}


# --- who may correct ----------------------------------------------------------------------------------------------

def test_a_viewer_gets_403_and_a_visitor_401(app, client, auth):
    tracking_id = book(app)
    before = stored(app, tracking_id)
    response = client.post(f"/admin/shipments/{tracking_id}/edit", json={"pieces": 2})
    assert response.status_code == 401
    auth.login("support1", role="viewer")
    assert edit(client, auth, tracking_id, pieces=2).status_code == 403
    html = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert "/edit" not in html and "Correct the booking" not in html
    assert stored(app, tracking_id) == before and edits(app) == []


# --- the page -----------------------------------------------------------------------------------------------------

def form_values(html: str) -> dict[str, str]:
    """The corrections form's fields as the browser would send them: its inputs' values, its selects' choices."""
    form = re.search(r'<form[^>]*action="[^"]*/edit"[^>]*>(.*?)</form>', html, re.S).group(1)
    values = {name: value for name, value in re.findall(r'<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"', form)}
    for name, options in re.findall(r'<select[^>]*name="([^"]+)"[^>]*>(.*?)</select>', form, re.S):
        chosen = [tag for tag in re.findall(r"<option([^>]*)>", options) if re.search(r"\bselected\b", tag)]
        values[name] = re.search(r'value="([^"]*)"', chosen[0]).group(1)
    for name in re.findall(r'<input[^>]*name="([^"]+)"', form):
        values.setdefault(name, "")
    return values


def test_the_pages_form_round_trip(app, client, operator):
    tracking_id = book(app)
    page = client.get(f"/admin/shipments/{tracking_id}", headers=HTML)
    html = page.get_data(as_text=True)
    assert "Correct the booking" in html and f'action="/admin/shipments/{tracking_id}/edit"' in html
    assert f'href="/admin/shipments/{tracking_id}/receipt.pdf"' in html and "Rate card version 1" in html
    values = form_values(html)
    assert values["receiver_name"] == "Vikram Nair" and values["mobile"] == "+919876543210"
    assert values["service"] == "standard" and values["payment"] == "prepaid" and values["weight_kg"] == ""
    assert set(EDITABLE_FIELDS) <= set(values) and values["csrf_token"]

    # Unchanged, it changes nothing.
    response = client.post(f"/admin/shipments/{tracking_id}/edit", data=values, headers=HTML)
    assert response.status_code == 302 and edits(app) == []

    values.update(weight_kg="4.5", destination="5 Park Street, Kochi")
    response = client.post(f"/admin/shipments/{tracking_id}/edit", data=values, headers=HTML)
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/admin/shipments/{tracking_id}")
    html = client.get(response.headers["Location"], headers=HTML).get_data(as_text=True)
    assert "Booking corrected: Destination address, Weight (kg)." in html
    row = stored(app, tracking_id)
    assert (row["weight_kg"], row["destination"]) == (Decimal("4.5"), "5 Park Street, Kochi")
    assert form_values(html)["weight_kg"] == "4.500"

    # A refusal comes back on the page, beside its field, with what was typed kept.
    values.update(weight_kg="heavy", email="")
    response = client.post(f"/admin/shipments/{tracking_id}/edit", data=values, headers=HTML)
    assert response.status_code == 400
    html = response.get_data(as_text=True)
    assert "The booking was not corrected" in html and 'id="weight_kg-error"' in html
    assert 'value="heavy"' in html and '<details class="edit-booking" open>' in html
    assert stored(app, tracking_id)["email"] == "vikram@example.com"

    # Without the page's token nothing happens.
    values.update(weight_kg="6", csrf_token="forged")
    assert client.post(f"/admin/shipments/{tracking_id}/edit", data=values, headers=HTML).status_code == 400
    assert stored(app, tracking_id)["weight_kg"] == Decimal("4.5")


def test_the_page_offers_only_what_may_still_change(app, client, operator):
    out = book(app, *TO_OUT_FOR_DELIVERY)
    html = client.get(f"/admin/shipments/{out}", headers=HTML).get_data(as_text=True)
    values = form_values(html)
    assert "mobile" not in values and "destination" not in values and "weight_kg" in values
    assert "fixed once a shipment is Out for Delivery" in html
    # The page's form without the fixed fields corrects the parcel.
    values["pieces"] = "2"
    response = client.post(f"/admin/shipments/{out}/edit", data=values, headers=HTML)
    assert response.status_code == 302 and stored(app, out)["pieces"] == 2

    delivered = book(app, *TO_OUT_FOR_DELIVERY, "Delivered")
    html = client.get(f"/admin/shipments/{delivered}", headers=HTML).get_data(as_text=True)
    assert "/edit" not in html and "nothing on this booking can be corrected any more" in html


def test_a_409_from_the_page_says_why(app, client, operator):
    tracking_id = book(app)
    values = form_values(client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True))
    with app.app_context():  # the shipment goes out for delivery while the page is open
        for status in TO_OUT_FOR_DELIVERY:
            record_status_change(tracking_id, status, "Hub", None, actor="setup")
        db.session.commit()
    values["mobile"] = "+91 98470 12345"
    response = client.post(f"/admin/shipments/{tracking_id}/edit", data=values, headers=HTML)
    assert response.status_code == 409
    assert "fixed once a shipment is Out for Delivery" in response.get_data(as_text=True)
    assert stored(app, tracking_id)["mobile"] == "+919876543210"


def test_a_refusal_about_a_field_the_page_no_longer_offers_is_still_said(app, client, operator):
    tracking_id = book_parcel(app, *TO_OUT_FOR_DELIVERY, destination_pincode="682016")
    values = form_values(client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True))
    assert "destination_pincode" not in values
    with app.app_context():  # the network stops serving the destination
        replace_all([ServiceabilityRow(2, {"pincode": "110001", "cod": "yes", "express": "yes"})], actor="chief")
        db.session.commit()
    values["service"] = "express"
    response = client.post(f"/admin/shipments/{tracking_id}/edit", data=values, headers=HTML)
    assert response.status_code == 422
    assert "We do not deliver to PIN code 682016 yet." in response.get_data(as_text=True)
    assert stored(app, tracking_id)["service"] == "standard"


def test_the_staff_record_says_what_may_still_change(app, client, operator):
    tracking_id = book(app, *TO_OUT_FOR_DELIVERY)
    assert client.get(f"/admin/shipments/{tracking_id}").get_json()["editable"] == list(PARCEL_EDIT_FIELDS)
