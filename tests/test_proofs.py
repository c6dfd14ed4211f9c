"""Proof of delivery: who received the parcel or why it could not be delivered, the signature and the photo.

Required on the staff page, optional on the paper-compatible POST /update/<id>; files re-encoded and kept in the
file store (the filesystem here, S3 through moto's server mode at the end); staff-only file routes; the public
page and JSON show the receiver's first name only; the delivered email says who received it."""
from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw
from sqlalchemy import func, select

from app import create_app
from app.api.schemas import NAME
from app.errors import ValidationError
from app.extensions import db
from app.models import AuditEntry, DeliveryProof, Notification, Shipment, TrackingEvent
from app.services.outbox import messages
from app.services.shipments.booking import NewShipment
from app.services.shipments.booking import create_shipment as book
from app.services.shipments.evidence_images import MAX_UPLOAD_BYTES
from app.services.shipments.proofs import ATTEMPT_REASONS, check_proof, first_name, record_proofs
from app.services.shipments.status_changes import record_status_change
from app.services.shipments.tracking_cache import stop_tracking_cache
from app.services.staff.users import create_user
from tests.conftest import VALID_BOOKING, AuthActions, clean_database
from tests.test_storage import s3_config, s3_endpoint  # noqa: F401 - fixtures (moto in server mode)

HTML = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
TO_THE_DOOR = ["Picked Up", "In Transit", "Out for Delivery"]
RECEIVER = "Ravi Kumar Menon"


@pytest.fixture
def storage_dir(tmp_path) -> Path:
    return tmp_path / "uploads"


@pytest.fixture
def app(make_config, storage_dir):
    """The test app, its proof-of-delivery files in a folder of this test's own."""
    application = create_app(make_config(STORAGE_DIR=str(storage_dir)))
    yield application
    clean_database(application)
    with application.app_context():
        db.engine.dispose()


def png_signature(blank: bool = False) -> bytes:
    image = Image.new("RGBA", (600, 200), (0, 0, 0, 0))
    if not blank:
        ImageDraw.Draw(image).line([(40, 150), (200, 40), (360, 160), (560, 60)], fill=(20, 20, 20, 255), width=4)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def data_url(png: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(png).decode()


def jpeg_with_metadata(size=(800, 600)) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # Make
    exif[0x8825] = {2: (12.0, 58.0, 0.0)}  # GPS latitude
    out = io.BytesIO()
    Image.new("RGB", size, (200, 120, 40)).save(out, format="JPEG", exif=exif.tobytes(), comment=b"Flat 4B")
    return out.getvalue()


def at_the_door(client, auth, create_shipment) -> str:
    """A shipment Out for Delivery, through the paper API, with an operator signed in."""
    tracking_id = create_shipment()
    auth.login()
    for status in TO_THE_DOOR:
        response = client.post(f"/update/{tracking_id}", json={"status": status, "location": "Kochi Hub"},
                               headers=auth.headers())
        assert response.status_code == 200, response.get_json()
    return tracking_id


def staff_post(client, auth, tracking_id: str, **fields):
    """The shipment page's multipart update form, as a browser sends it."""
    data = {"csrf_token": auth.csrf_token, "location": "Kochi", "note": "", "customer_message": "",
            "received_by": "", "attempt_reason": "", "signature": "", **fields}
    return client.post(f"/admin/shipments/{tracking_id}", data=data, content_type="multipart/form-data",
                       headers=HTML)


def photo_part(data: bytes, name: str = "door.jpg", mimetype: str = "image/jpeg"):
    return (io.BytesIO(data), name, mimetype)


def counts(app) -> dict[str, int]:
    with app.app_context():
        return {model.__tablename__: db.session.scalar(select(func.count()).select_from(model))
                for model in (TrackingEvent, DeliveryProof, Notification, AuditEntry)}


def stored_files(storage_dir: Path) -> list[Path]:
    return sorted(p for p in storage_dir.rglob("*") if p.is_file()) if storage_dir.exists() else []


def proofs(app) -> list[DeliveryProof]:
    with app.app_context():
        rows = db.session.scalars(select(DeliveryProof).order_by(DeliveryProof.id)).all()
        db.session.expunge_all()
        return rows


def status_of(app, tracking_id: str) -> str:
    with app.app_context():
        return db.session.scalars(select(Shipment.status).where(Shipment.tracking_id == tracking_id)).one()


def problem_of(response, field: str) -> str:
    """The error shown beside a field of the re-rendered page."""
    match = re.search(rf'id="{field}-error"><span class="visually-hidden">Error: </span>([^<]+)<',
                      response.get_data(as_text=True))
    assert match, f"no error shown for {field}"
    return match.group(1)


# --- check_proof, without an app ------------------------------------------------------------------------------

def test_check_proof_requires_what_each_status_needs_only_when_asked_to():
    with pytest.raises(ValidationError) as caught:
        check_proof("Delivered", None, None, required=True)
    assert set(caught.value.fields) == {"received_by"}
    with pytest.raises(ValidationError) as caught:
        check_proof("delivery attempted", "  ", "", required=True)
    assert set(caught.value.fields) == {"attempt_reason"}
    assert check_proof("Delivered", None, None, required=False).received_by is None
    assert check_proof("Delivery Attempted", None, None, required=False).attempt_reason is None


def test_check_proof_normalises_and_ignores_what_does_not_apply():
    proof = check_proof("Delivered", "  Ravi \t Kumar ", "refused", required=True)
    assert (proof.received_by, proof.attempt_reason) == ("Ravi Kumar", None)
    proof = check_proof("Delivery Attempted", "Ravi", " Nobody_Home ", required=True)
    assert (proof.received_by, proof.attempt_reason) == (None, "nobody_home")
    assert check_proof("In Transit", None, None, required=True) is None
    assert check_proof("Lost", None, None, required=True) is None  # the status check says why (400)


@pytest.mark.parametrize("received_by, reason, field", [
    ("R" * 101, None, "received_by"), ("Ravi\x00", None, "received_by"), ("Ravi\u202eK", None, "received_by"),
])
def test_check_proof_refuses_bad_names(received_by, reason, field):
    with pytest.raises(ValidationError) as caught:
        check_proof("Delivered", received_by, reason, required=False)
    assert set(caught.value.fields) == {field}


def test_check_proof_refuses_reasons_outside_the_list_and_names_the_list():
    with pytest.raises(ValidationError) as caught:
        check_proof("Delivery Attempted", None, "dog ate it", required=False)
    assert all(code in caught.value.fields["attempt_reason"] for code in ATTEMPT_REASONS)


def test_check_proof_reports_every_bad_field_at_once():
    with pytest.raises(ValidationError) as caught:
        check_proof("Delivered", "", None, required=True, signature=png_signature(blank=True), photo=b"GIF89a")
    assert set(caught.value.fields) == {"received_by", "signature", "photo"}


def test_first_name_is_the_first_word_only():
    assert first_name("Ravi Kumar Menon") == "Ravi"
    assert first_name("  Ravi ") == "Ravi"
    assert first_name(None) is None and first_name("   ") is None


# --- the staff page ---------------------------------------------------------------------------------------------

def test_staff_page_needs_the_receiver_for_delivered_and_writes_nothing_without(
        client, auth, create_shipment, app, storage_dir):
    tracking_id = at_the_door(client, auth, create_shipment)
    before = counts(app)
    response = staff_post(client, auth, tracking_id, status="Delivered",
                          signature=data_url(png_signature()), photo=photo_part(jpeg_with_metadata()))
    assert response.status_code == 400
    assert problem_of(response, "received_by") == "Enter the name of the person who received the parcel."
    assert status_of(app, tracking_id) == "Out for Delivery"
    assert counts(app) == before
    assert stored_files(storage_dir) == []


@pytest.mark.parametrize("reason, message", [
    ("", "Choose why the delivery could not be made."), ("dog_ate_it", "Must be one of: nobody_home"),
])
def test_staff_page_needs_a_listed_reason_for_delivery_attempted(client, auth, create_shipment, app, reason,
                                                                 message):
    tracking_id = at_the_door(client, auth, create_shipment)
    before = counts(app)
    response = staff_post(client, auth, tracking_id, status="Delivery Attempted", attempt_reason=reason)
    assert response.status_code == 400
    assert problem_of(response, "attempt_reason").startswith(message)
    assert counts(app) == before


def test_staff_page_offers_the_proof_fields_the_next_statuses_need(client, auth, create_shipment):
    tracking_id = at_the_door(client, auth, create_shipment)
    page = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert 'enctype="multipart/form-data"' in page
    assert 'name="received_by"' in page and 'name="attempt_reason"' in page
    assert 'name="signature"' in page and 'name="photo"' in page and "<canvas" in page
    assert all(f'value="{code}"' in page for code in ATTEMPT_REASONS)
    assert re.search(r"/static/js/signature\.[0-9a-f]{12}\.js", page) and "<script>" not in page
    booked = create_shipment()
    page = client.get(f"/admin/shipments/{booked}", headers=HTML).get_data(as_text=True)
    assert 'name="received_by"' not in page and 'name="attempt_reason"' not in page


def test_staff_delivery_stores_the_signature_and_a_clean_photo(client, auth, create_shipment, app, storage_dir):
    tracking_id = at_the_door(client, auth, create_shipment)
    response = staff_post(client, auth, tracking_id, status="Delivered", received_by=f"  {RECEIVER} ",
                          signature=data_url(png_signature()), photo=photo_part(jpeg_with_metadata()))
    assert response.status_code == 302, response.get_data(as_text=True)
    assert status_of(app, tracking_id) == "Delivered"
    [proof] = proofs(app)
    assert proof.received_by == RECEIVER and proof.attempt_reason is None
    assert proof.signature_key.endswith(".png") and proof.photo_key.endswith(".jpg")
    files = stored_files(storage_dir)
    assert sorted(p.relative_to(storage_dir).as_posix() for p in files) == sorted(
        [proof.signature_key, proof.photo_key])
    with Image.open(storage_dir / proof.signature_key) as signature:
        assert signature.format == "PNG" and signature.getchannel("A").getbbox() is not None
    photo = (storage_dir / proof.photo_key).read_bytes()
    with Image.open(io.BytesIO(photo)) as picture:
        assert picture.format == "JPEG" and not picture.getexif() and "comment" not in picture.info
    assert b"PhoneMaker" not in photo and b"Flat 4B" not in photo

    page = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert "Proof of delivery" in page and RECEIVER in page
    for kind, content_type, stored in (("signature", "image/png", proof.signature_key),
                                       ("photo", "image/jpeg", proof.photo_key)):
        url = f"/admin/shipments/{tracking_id}/proofs/{proof.id}/{kind}"
        assert f'src="{url}"' in page
        served = client.get(url)
        assert served.status_code == 200
        assert served.mimetype == content_type
        assert served.headers["Cache-Control"] == "private, no-store"
        assert served.data == (storage_dir / stored).read_bytes()
    body = client.get(f"/admin/shipments/{tracking_id}").get_json()
    assert body["proofs"] == [{
        "status": "Delivered", "occurred_at": body["events"][-1]["occurred_at"], "received_by": RECEIVER,
        "attempt_reason": None, "signature_url": f"/admin/shipments/{tracking_id}/proofs/{proof.id}/signature",
        "photo_url": f"/admin/shipments/{tracking_id}/proofs/{proof.id}/photo"}]


def test_staff_delivery_attempt_records_its_reason(client, auth, create_shipment, app):
    tracking_id = at_the_door(client, auth, create_shipment)
    response = staff_post(client, auth, tracking_id, status="Delivery Attempted", attempt_reason="nobody_home",
                          received_by="ignored here")
    assert response.status_code == 302
    [proof] = proofs(app)
    assert (proof.attempt_reason, proof.received_by, proof.signature_key) == ("nobody_home", None, None)
    page = client.get(f"/admin/shipments/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert "Nobody home" in page


@pytest.mark.parametrize("fields, field, message", [
    ({"photo": ("big", b"\xff\xd8" + b"\x00" * (MAX_UPLOAD_BYTES + 1))}, "photo", "At most 5 MB."),
    ({"photo": ("not", b"%PDF-1.4 not an image")}, "photo", "Must be a JPEG or PNG image."),
    ({"signature": data_url(b"\x89PNG\r\n\x1a\n broken")}, "signature", "Must be a JPEG or PNG image."),
    ({"signature": "data:image/svg+xml;base64,PHN2Zz4="}, "signature", "Must be a PNG image"),
    ({"signature": "data:image/png;base64,***"}, "signature", "Must be a PNG image (the base64 is not valid)."),
    ({"signature": data_url(png_signature(blank=True))}, "signature", "The signature is empty"),
])
def test_bad_files_are_refused_naming_their_field_and_nothing_is_half_written(
        client, auth, create_shipment, app, storage_dir, fields, field, message):
    tracking_id = at_the_door(client, auth, create_shipment)
    before = counts(app)
    form = {"signature": data_url(png_signature()), "photo": photo_part(jpeg_with_metadata())}
    for name, value in fields.items():
        form[name] = photo_part(value[1], name=f"{value[0]}.jpg") if name == "photo" else value
    response = staff_post(client, auth, tracking_id, status="Delivered", received_by=RECEIVER, **form)
    assert response.status_code == 400
    assert problem_of(response, field).startswith(message)
    assert counts(app) == before
    assert stored_files(storage_dir) == []
    assert status_of(app, tracking_id) == "Out for Delivery"


def test_a_request_too_large_for_any_photo_is_a_413(client, auth, create_shipment, app):
    tracking_id = at_the_door(client, auth, create_shipment)
    before = counts(app)
    response = staff_post(client, auth, tracking_id, status="Delivered", received_by=RECEIVER,
                          photo=photo_part(b"\xff\xd8" + b"\x00" * (7 * 1024 * 1024)))
    assert response.status_code == 413
    assert counts(app) == before


def test_a_refused_transition_stores_no_file(client, auth, create_shipment, app, storage_dir):
    tracking_id = create_shipment()  # Booked: cannot become Delivered
    auth.login()
    before = counts(app)
    response = staff_post(client, auth, tracking_id, status="Delivered", received_by=RECEIVER,
                          signature=data_url(png_signature()), photo=photo_part(jpeg_with_metadata()))
    assert response.status_code == 409
    assert counts(app) == before
    assert stored_files(storage_dir) == []


def test_a_failing_store_is_a_503_and_rolls_the_change_back(client, auth, create_shipment, app, storage_dir):
    tracking_id = at_the_door(client, auth, create_shipment)
    storage_dir.parent.mkdir(parents=True, exist_ok=True)
    storage_dir.write_text("a file where the folder should be")  # every write under it fails
    before = counts(app)
    response = staff_post(client, auth, tracking_id, status="Delivered", received_by=RECEIVER,
                          signature=data_url(png_signature()))
    assert response.status_code == 503
    assert "nothing was recorded" in response.get_data(as_text=True)
    assert counts(app) == before and status_of(app, tracking_id) == "Out for Delivery"


# --- the paper-compatible POST /update/<id> -------------------------------------------------------------------

def test_paper_route_still_accepts_deliveries_without_a_name(client, auth, create_shipment, app):
    tracking_id = at_the_door(client, auth, create_shipment)
    response = client.post(f"/update/{tracking_id}", json={"status": "Delivery Attempted", "location": "Kochi"},
                           headers=auth.headers())
    assert response.status_code == 200, response.get_json()
    for status in ("Out for Delivery", "Delivered"):
        response = client.post(f"/update/{tracking_id}", json={"status": status, "location": "Kochi"},
                               headers=auth.headers())
        assert response.status_code == 200, response.get_json()
    assert [(p.received_by, p.attempt_reason) for p in proofs(app)] == [(None, None), (None, None)]
    body = client.get(f"/track/{tracking_id}").get_json()
    assert body["delivery"] == {"received_by": None, "delivered_at": body["events"][-1]["occurred_at"]}
    page = client.get(f"/track/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert re.search(r"Delivered at <time", page)


def test_paper_route_records_the_name_and_reason_when_sent(client, auth, create_shipment, app):
    tracking_id = at_the_door(client, auth, create_shipment)
    response = client.post(f"/update/{tracking_id}", json={
        "status": "Delivery Attempted", "location": "Kochi", "attempt_reason": "address_not_found"},
        headers=auth.headers())
    assert response.status_code == 200
    client.post(f"/update/{tracking_id}", json={"status": "Out for Delivery", "location": "Kochi"},
                headers=auth.headers())
    response = client.post(f"/update/{tracking_id}", json={
        "status": "Delivered", "location": "Kochi", "received_by": RECEIVER}, headers=auth.headers())
    assert response.status_code == 200
    assert [(p.received_by, p.attempt_reason) for p in proofs(app)] == [
        (None, "address_not_found"), (RECEIVER, None)]


@pytest.mark.parametrize("body, field", [
    ({"status": "Delivery Attempted", "attempt_reason": "aliens"}, "attempt_reason"),
    ({"status": "Delivery Attempted", "attempt_reason": 3}, "attempt_reason"),
    ({"status": "Delivered", "received_by": "R" * 101}, "received_by"),
    ({"status": "Delivered", "received_by": ["Ravi"]}, "received_by"),
    ({"status": "Delivered", "received_by": "Ravi\x07"}, "received_by"),
])
def test_paper_route_refuses_bad_proof_values_and_changes_nothing(client, auth, create_shipment, app, body, field):
    tracking_id = at_the_door(client, auth, create_shipment)
    before = counts(app)
    response = client.post(f"/update/{tracking_id}", json={"location": "Kochi", **body}, headers=auth.headers())
    assert response.status_code == 400
    assert set(response.get_json()["fields"]) == {field}
    assert counts(app) == before and status_of(app, tracking_id) == "Out for Delivery"


def test_paper_route_form_post_takes_received_by(client, auth, create_shipment, app):
    tracking_id = at_the_door(client, auth, create_shipment)
    response = client.post(f"/update/{tracking_id}", data={
        "csrf_token": auth.csrf_token, "status": "Delivered", "location": "Kochi", "received_by": RECEIVER})
    assert response.status_code == 302
    assert [p.received_by for p in proofs(app)] == [RECEIVER]


# --- what the public sees ---------------------------------------------------------------------------------------

def test_public_page_and_json_show_the_first_name_only_and_no_files(client, auth, create_shipment, app):
    tracking_id = at_the_door(client, auth, create_shipment)
    staff_post(client, auth, tracking_id, status="Delivered", received_by=RECEIVER,
               signature=data_url(png_signature()), photo=photo_part(jpeg_with_metadata()))
    [proof] = proofs(app)
    auth.logout()
    body = client.get(f"/track/{tracking_id}").get_json()
    assert body["delivery"] == {"received_by": "Ravi", "delivered_at": body["events"][-1]["occurred_at"]}
    page = client.get(f"/track/{tracking_id}", headers=HTML).get_data(as_text=True)
    fragment = client.get(f"/track/{tracking_id}?fragment=timeline", headers=HTML).get_data(as_text=True)
    for text in (page, fragment):  # one function says what the public sees of a delivery, page and JSON alike
        shown = re.search(r"Delivered to Ravi at <time datetime=\"([^\"]+Z)\">", text)
        assert shown and shown.group(1) == body["delivery"]["delivered_at"]
    for text in (page, fragment, str(body)):
        assert "Kumar" not in text and "Menon" not in text
        assert "/proofs/" not in text and "signature" not in text.lower() and proof.photo_key not in text
    for kind in ("signature", "photo"):
        url = f"/admin/shipments/{tracking_id}/proofs/{proof.id}/{kind}"
        assert client.get(url).status_code == 401
        assert client.get(url, headers=HTML).status_code == 302  # to the sign-in page
        assert client.get(url, headers=HTML).headers["Location"].startswith("/login")


def test_public_json_of_a_shipment_not_delivered_has_no_delivery(client, create_shipment):
    assert "delivery" not in client.get(f"/track/{create_shipment()}").get_json()


def timeline_badges(page: str) -> list[str]:
    """The badge texts of a page's timeline, newest first."""
    timeline = page[page.index('<ol class="timeline"'):]
    timeline = timeline[:timeline.index("</ol>")]
    return re.findall(r'<span class="badge [^"]+">([^<]+)</span>', timeline)


def test_the_public_timeline_says_why_a_delivery_attempt_failed(client, auth, create_shipment, app):
    tracking_id = at_the_door(client, auth, create_shipment)
    staff_post(client, auth, tracking_id, status="Delivery Attempted", attempt_reason="business_closed",
               location="Kochi")
    auth.logout()
    events = client.get(f"/track/{tracking_id}").get_json()["events"]
    assert [e["attempt_reason"] for e in events] == [None, None, None, None, "Business closed"]
    page = client.get(f"/track/{tracking_id}", headers=HTML).get_data(as_text=True)
    fragment = client.get(f"/track/{tracking_id}?fragment=timeline", headers=HTML).get_data(as_text=True)
    for text in (page, fragment):
        assert '<p class="timeline__reason">Reason: Business closed</p>' in text
    hindi = client.get(f"/track/{tracking_id}?lang=hi", headers=HTML).get_data(as_text=True)
    assert "Business closed" not in hindi and "कारण: दुकान या दफ़्तर बंद था" in hindi


def test_a_hold_and_its_release_do_not_show_the_status_twice(client, auth, create_shipment):
    tracking_id = create_shipment()
    auth.login()
    for status in ("On Hold", "Booked", "Picked Up"):
        response = client.post(f"/update/{tracking_id}", json={"status": status, "location": "Kochi Hub"},
                               headers=auth.headers())
        assert response.status_code == 200, response.get_json()
    auth.logout()
    events = client.get(f"/track/{tracking_id}").get_json()["events"]
    assert [(e["status"], e["hold_released"]) for e in events] == [
        ("Booked", False), ("On Hold", False), ("Booked", True), ("Picked Up", False)]
    page = client.get(f"/track/{tracking_id}", headers=HTML).get_data(as_text=True)
    assert timeline_badges(page) == ["Picked Up", "Hold released", "On Hold", "Booked"]
    hindi = client.get(f"/track/{tracking_id}?lang=hi", headers=HTML).get_data(as_text=True)
    assert "Hold released" not in hindi


def test_file_routes_answer_404_for_another_shipments_proof_or_kind(client, auth, create_shipment, app):
    tracking_id = at_the_door(client, auth, create_shipment)
    staff_post(client, auth, tracking_id, status="Delivered", received_by=RECEIVER,
               signature=data_url(png_signature()))
    [proof] = proofs(app)
    other = create_shipment()
    assert client.get(f"/admin/shipments/{other}/proofs/{proof.id}/signature").status_code == 404
    assert client.get(f"/admin/shipments/{tracking_id}/proofs/{proof.id}/photo").status_code == 404  # none taken
    assert client.get(f"/admin/shipments/{tracking_id}/proofs/{proof.id}/key").status_code == 404
    assert client.get(f"/admin/shipments/{tracking_id}/proofs/99999999999/signature").status_code == 404
    assert client.get(f"/admin/shipments/{tracking_id}/proofs/{proof.id}/signature").status_code == 200


def test_viewers_see_the_files_too(client, auth, create_shipment, app):
    tracking_id = at_the_door(client, auth, create_shipment)
    staff_post(client, auth, tracking_id, status="Delivered", received_by=RECEIVER,
               signature=data_url(png_signature()))
    [proof] = proofs(app)
    auth.logout()
    auth.login("viewer1", role="viewer")
    response = client.get(f"/admin/shipments/{tracking_id}/proofs/{proof.id}/signature")
    assert response.status_code == 200 and response.mimetype == "image/png"


def test_the_cached_tracking_document_shows_the_delivery_once_it_is_recorded(
        make_config, storage_dir, database_url, booking):
    application = create_app(make_config(STORAGE_DIR=str(storage_dir), TRACK_CACHE_ENABLED=True))
    try:
        client = application.test_client()
        tracking_id = client.post("/create", json=booking).get_json()["tracking_id"]
        with application.app_context():
            create_user("operator1", "correct-horse-1", "operator")
            db.session.commit()
        auth = AuthActions(client, lambda *a, **k: None)
        auth.login(create=False)
        for status in TO_THE_DOOR:
            client.post(f"/update/{tracking_id}", json={"status": status, "location": "Hub"}, headers=auth.headers())
        listener = application.extensions.get("waybill_tracking_listener")
        if listener is not None:
            assert listener.connected.wait(10)
        assert "delivery" not in client.get(f"/track/{tracking_id}").get_json()
        assert "delivery" not in client.get(f"/track/{tracking_id}").get_json()  # now from the cache (PostgreSQL)
        client.post(f"/update/{tracking_id}", json={"status": "Delivered", "location": "Kochi",
                                                     "received_by": RECEIVER}, headers=auth.headers())
        assert client.get(f"/track/{tracking_id}").get_json()["delivery"]["received_by"] == "Ravi"
    finally:
        stop_tracking_cache(application)
        clean_database(application)
        with application.app_context():
            db.engine.dispose()


# --- the email ----------------------------------------------------------------------------------------------

def rendered_email(app, status: str):
    with app.app_context():
        row = db.session.scalars(select(Notification).join(TrackingEvent, TrackingEvent.id == Notification.event_id)
                                 .where(TrackingEvent.status == status, Notification.channel == "email")).one()
        return messages.render(row, messages.load_facts([row]))


def test_the_delivered_email_says_who_received_it(client, auth, create_shipment, app):
    tracking_id = at_the_door(client, auth, create_shipment)
    client.post(f"/update/{tracking_id}", json={"status": "Delivery Attempted", "location": "Kochi",
                                                "attempt_reason": "nobody_home"}, headers=auth.headers())
    client.post(f"/update/{tracking_id}", json={"status": "Out for Delivery", "location": "Kochi"},
                headers=auth.headers())
    client.post(f"/update/{tracking_id}", json={"status": "Delivered", "location": "Kochi",
                                                "received_by": RECEIVER}, headers=auth.headers())
    email = rendered_email(app, "Delivered")
    assert f"has been delivered and was received by {RECEIVER}." in email.body_text
    assert f"received by {RECEIVER}." in email.body_html
    attempted = rendered_email(app, "Delivery Attempted")
    assert "could not (nobody home)." in attempted.body_text and "(nobody home)" in attempted.body_html


def test_the_delivered_email_without_a_name_says_delivered(client, auth, create_shipment, app):
    tracking_id = at_the_door(client, auth, create_shipment)
    client.post(f"/update/{tracking_id}", json={"status": "Delivered", "location": "Kochi"}, headers=auth.headers())
    assert f"Your shipment {tracking_id} has been delivered. Thank you" in rendered_email(app, "Delivered").body_text


# --- bulk recording (for scan mode) -------------------------------------------------------------------------

def test_record_proofs_writes_many_in_one_go_and_skips_items_without_one(app_ctx, storage_dir):
    events = []
    for n in range(3):
        shipment = book(NewShipment(**{**VALID_BOOKING, "mobile": "+919876543210",
                                                  "receiver_name": f"Receiver {n}"}))
        for status in TO_THE_DOOR[:-1]:
            record_status_change(shipment.tracking_id, status, "Hub", None, actor="op1")
        # An event without a proof of its own (a Delivered one gets its proof from the status change itself).
        _, event = record_status_change(shipment.tracking_id, TO_THE_DOOR[-1], "Kochi", None, actor="op1")
        events.append(event)
    items = [(events[0].id, events[0].shipment_id, check_proof("Delivered", "Anu", None, required=True,
                                                               signature=png_signature())),
             (events[1].id, events[1].shipment_id, None),
             (events[2].id, events[2].shipment_id, check_proof("Delivered", "Binu", None, required=True))]
    record_proofs(items)
    db.session.commit()
    rows = db.session.scalars(select(DeliveryProof).order_by(DeliveryProof.event_id)).all()
    assert [(r.event_id, r.received_by, r.signature_key is not None) for r in rows] == [
        (events[0].id, "Anu", True), (events[2].id, "Binu", False)]
    assert (storage_dir / rows[0].signature_key).is_file()


# --- S3 (moto's server mode, never AWS) -------------------------------------------------------------------------

def test_a_delivery_with_s3_storage_puts_the_files_in_the_bucket(make_config, s3_config, booking):  # noqa: F811
    import boto3

    application = create_app(make_config(**s3_config))
    try:
        client = application.test_client()
        with application.app_context():
            create_user("operator1", "correct-horse-1", "operator")
            db.session.commit()
        auth = AuthActions(client, lambda *a, **k: None)
        tracking_id = client.post("/create", json=booking).get_json()["tracking_id"]
        auth.login(create=False)
        for status in TO_THE_DOOR:
            client.post(f"/update/{tracking_id}", json={"status": status, "location": "Hub"}, headers=auth.headers())
        response = staff_post(client, auth, tracking_id, status="Delivered", received_by=RECEIVER,
                              signature=data_url(png_signature()), photo=photo_part(jpeg_with_metadata()))
        assert response.status_code == 302
        with application.app_context():
            proof = db.session.scalars(select(DeliveryProof)).one()
            keys = (proof.signature_key, proof.photo_key, proof.id)
        bucket = boto3.client("s3", region_name="ap-south-1", endpoint_url=s3_config["S3_ENDPOINT_URL"])
        listed = sorted(o["Key"] for o in bucket.list_objects_v2(Bucket=s3_config["S3_BUCKET"])["Contents"])
        assert listed == sorted(f"proof/{key}" for key in keys[:2])
        served = client.get(f"/admin/shipments/{tracking_id}/proofs/{keys[2]}/photo")
        assert served.status_code == 200 and served.mimetype == "image/jpeg"
        with Image.open(io.BytesIO(served.data)) as picture:
            assert not picture.getexif()
    finally:
        clean_database(application)
        with application.app_context():
            db.engine.dispose()


@settings(max_examples=300, deadline=None)
@given(name=st.from_regex(NAME, fullmatch=True).filter(lambda text: 0 < len(" ".join(text.split())) <= 100))
def test_every_name_the_published_pattern_allows_is_accepted(name):
    """The API publishes NAME for received_by; a contract fuzzer sends whatever it allows (unassigned or private-use
    code points included), and each must be accepted as it is described."""
    assert check_proof("Delivered", name, None, required=True).received_by == " ".join(name.split())


@pytest.mark.parametrize("hidden", ["\u200b", "\u200d", "\u202e", "\u2066", "\ufeff", "\u00ad"])
def test_invisible_formatting_is_refused_and_outside_the_published_pattern(hidden):
    with pytest.raises(ValidationError) as caught:
        check_proof("Delivered", f"Ravi{hidden}Kumar", None, required=True)
    assert "received_by" in caught.value.fields
    assert re.fullmatch(NAME, f"Ravi{hidden}Kumar") is None
