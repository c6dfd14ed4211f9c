"""The rate card on a database (SQLite and PostgreSQL): versions, audit, refusals, roles, quotes and receipts."""
from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
from decimal import Decimal
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.domain.pricing import DEFAULT_RATE_CARD
from app.domain.timeutil import utcnow
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import AuditEntry, RateCardVersion
from app.services.shipments.rates import card_history, card_version, charges_for, current_card, save_card
from app.services.shipments.receipts import ReceiptData, receipt_for, render_receipt

PDF_TOOLS = ("pdftotext", "pdfinfo")


def card_document(**changes) -> dict:
    document = copy.deepcopy(DEFAULT_RATE_CARD.as_document())
    document.pop("version")
    document.update(changes)
    return document


def counts(app) -> tuple[int, int]:
    """(rate card versions stored, rate_card_saved audit rows)."""
    with app.app_context():
        versions = db.session.scalar(select(func.count()).select_from(RateCardVersion))
        audits = db.session.scalar(select(func.count()).select_from(AuditEntry)
                                   .where(AuditEntry.action == "rate_card_saved"))
        return versions, audits


@pytest.fixture
def admin(auth):
    auth.login("chief", role="admin")
    return auth


# --- the service ---------------------------------------------------------------------------------------------------

def test_an_empty_table_prices_with_the_default_card_as_version_1(app_ctx):
    assert current_card() == DEFAULT_RATE_CARD
    assert card_version(1) == DEFAULT_RATE_CARD
    with pytest.raises(NotFound):
        card_version(2)
    assert [saved.card.version for saved in card_history()] == [1]


def test_saving_makes_the_next_version_keeps_the_old_and_audits(app_ctx):
    first, created = save_card(card_document(tax_rate="0.12"), actor="chief")
    db.session.commit()
    assert created and first.card.version == 2 and first.created_by == "chief"
    # The built-in default was stored as version 1 on the way, so version 1 stays readable for good.
    assert card_version(1) == DEFAULT_RATE_CARD
    assert db.session.scalar(select(RateCardVersion.created_by).where(RateCardVersion.version == 1)) == "system"
    second, created = save_card({**card_document(tax_rate="0.12"), "cod": {"min": "50", "percent": "2.5"}},
                                actor="chief")
    db.session.commit()
    assert created and second.card.version == 3
    assert current_card().cod_min == Decimal("50.00") and card_version(2).cod_min == Decimal("40.00")
    assert card_version(2).tax_rate == Decimal("0.12")
    assert [saved.card.version for saved in card_history()] == [3, 2, 1]
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "rate_card_saved")
                               .order_by(AuditEntry.id)).all()
    assert [(a.target_type, a.target_id, a.actor) for a in audit] == [("rate_card", "2", "chief"),
                                                                     ("rate_card", "3", "chief")]
    assert audit[0].details == {"version": 2, "previous_version": 1, "changed": ["tax_rate"]}
    assert audit[1].details["changed"] == ["cod.min", "cod.percent"]


def test_saving_the_card_in_force_again_writes_nothing(app_ctx):
    save_card(card_document(tax_rate="0.12"), actor="chief")
    db.session.commit()
    again, created = save_card(card_document(tax_rate="0.120"), actor="chief")
    assert not created and again.card.version == 2
    assert db.session.scalar(select(func.count()).select_from(RateCardVersion)) == 2


def test_a_change_made_to_an_older_version_is_a_conflict(app_ctx):
    save_card({**card_document(tax_rate="0.12"), "version": 1}, actor="chief")
    db.session.commit()
    with pytest.raises(Conflict):
        save_card({**card_document(tax_rate="0.05"), "version": 1}, actor="someone")
    db.session.rollback()
    assert current_card().tax_rate == Decimal("0.12")
    with pytest.raises(ValidationError):
        save_card({**card_document(), "version": "2"}, actor="chief")


def test_bookings_keep_the_version_they_were_priced_with(app_ctx):
    before = charges_for(destination_pincode="560034", weight_kg="1")
    save_card(card_document(slabs={**card_document()["slabs"], "local": {
        "standard": {"first_kg": "0.5", "first_price": "45.00", "per_half_kg": "25.00"},
        "express": {"first_kg": "0.5", "first_price": "60.00", "per_half_kg": "30.00"}}}), actor="chief")
    db.session.commit()
    after = charges_for(destination_pincode="560034", weight_kg="1")
    assert (before.rate_card_version, before.freight) == (1, Decimal("60.00"))
    assert (after.rate_card_version, after.freight) == (2, Decimal("70.00"))
    # the old price can be computed again from the version the booking kept
    again = charges_for(destination_pincode="560034", weight_kg="1", card=card_version(before.rate_card_version))
    assert again == before


def test_the_origin_is_the_sender_pin_else_the_office(app_ctx):
    app_ctx.config["ORIGIN_PINCODE"] = "682016"
    assert charges_for(destination_pincode="682031").zone == "local"
    assert charges_for(destination_pincode="682031", sender_pincode="560001").zone == "national"
    assert charges_for(destination_pincode="686001", sender_pincode="").zone == "state"  # Kottayam: 68, not 682
    assert charges_for(destination_pincode="695001").zone == "national"  # Thiruvananthapuram: 69, not 68
    with pytest.raises(ValidationError) as refused:
        charges_for(destination_pincode="682031", weight_kg="-1", payment="cod")
    assert set(refused.value.fields) == {"weight_kg", "cod_amount"}


def test_origin_pincode_setting_is_checked_when_the_app_starts(monkeypatch):
    from app.config import DevelopmentConfig

    monkeypatch.setenv("ORIGIN_PINCODE", "682 016")
    assert DevelopmentConfig().ORIGIN_PINCODE == "682016"
    monkeypatch.setenv("ORIGIN_PINCODE", "")
    assert DevelopmentConfig().ORIGIN_PINCODE == "560001"
    monkeypatch.setenv("ORIGIN_PINCODE", "Kochi")
    with pytest.raises(RuntimeError, match="ORIGIN_PINCODE"):
        DevelopmentConfig()


def test_postgresql_refuses_to_edit_a_saved_version(app_ctx, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("the trigger is PostgreSQL's")
    save_card(card_document(tax_rate="0.12"), actor="chief")
    db.session.commit()
    with pytest.raises(DBAPIError, match="never edited"):
        db.session.execute(text("UPDATE rate_cards SET tax_rate = 0 WHERE version = 2"))
    db.session.rollback()
    assert card_version(2).tax_rate == Decimal("0.12")


# --- /admin/rates ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("role", ["admin", "operator", "viewer"])
def test_every_staff_role_reads_the_card(client, auth, role):
    auth.login(f"{role}1", role=role)
    body = client.get("/admin/rates").get_json()
    assert body["version"] == 1 and body["currency"] == "INR" and body["tax_rate"] == "0.18"
    assert body["slabs"]["local"]["standard"] == {"first_kg": "0.5", "first_price": "40.00", "per_half_kg": "20.00"}
    page = client.get("/admin/rates", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "Rate card" in page.get_data(as_text=True)
    assert ('action="/admin/rates"' in page.get_data(as_text=True)) == (role == "admin")
    assert client.get("/admin/rates/versions").get_json()["versions"][0]["version"] == 1
    assert client.get("/admin/rates/versions/1").get_json()["version"] == 1
    for missing in (9, 0, 2**31, 10**20):
        assert client.get(f"/admin/rates/versions/{missing}").status_code == 404


def test_anonymous_gets_401_and_browsers_are_sent_to_sign_in(client):
    for url in ("/admin/rates", "/admin/rates/versions", "/admin/rates/versions/1",
                "/admin/rates/quote?destination_pincode=682031"):
        assert client.get(url).status_code == 401
    page = client.get("/admin/rates", headers={"Accept": "text/html"})
    assert page.status_code == 302 and "/login" in page.headers["Location"]


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_admins_save_a_new_version(client, auth, app, role):
    auth.login(f"{role}1", role=role)
    response = client.post("/admin/rates", json=card_document(tax_rate="0.12"), headers=auth.headers())
    assert response.status_code == 403
    assert counts(app) == (0, 0)


def test_an_admin_saves_json_round_trip_and_reads_old_versions(client, admin, app):
    document = client.get("/admin/rates").get_json()
    document["slabs"]["national"]["express"]["first_price"] = "130.00"
    response = client.post("/admin/rates", json=document, headers=admin.headers())
    assert response.status_code == 201
    saved = response.get_json()
    assert saved["version"] == 2 and saved["created_by"] == "chief" and re.fullmatch(r".+Z", saved["created_at"])
    assert client.get("/admin/rates").get_json()["slabs"]["national"]["express"]["first_price"] == "130.00"
    assert client.get("/admin/rates/versions/1").get_json()["slabs"]["national"]["express"]["first_price"] == \
        "120.00"
    assert [v["version"] for v in client.get("/admin/rates/versions").get_json()["versions"]] == [2, 1]
    # The same document again (now made to version 1, no longer in force): a conflict, nothing written.
    stale = client.post("/admin/rates", json=document, headers=admin.headers())
    assert stale.status_code == 409 and stale.get_json()["current_version"] == 2
    unchanged = client.post("/admin/rates", json={**document, "version": 2}, headers=admin.headers())
    assert unchanged.status_code == 200 and unchanged.get_json()["version"] == 2
    assert counts(app) == (2, 1)
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "rate_card_saved")).one()
        assert entry.details == {"version": 2, "previous_version": 1, "changed": ["slabs.national.express.first_price"]}


def test_json_numbers_are_read_as_the_decimals_they_spell(client, admin, app):
    body = card_document(tax_rate=0.12, volumetric_divisor=4000, cod={"min": 45, "percent": 2.5})
    body["slabs"]["local"]["standard"] = {"first_kg": 1, "first_price": 40.1, "per_half_kg": 20}
    response = client.post("/admin/rates", json=body, headers=admin.headers())
    assert response.status_code == 201, response.get_json()
    saved = response.get_json()
    assert (saved["tax_rate"], saved["volumetric_divisor"], saved["cod"]) == ("0.12", 4000,
                                                                               {"min": "45.00", "percent": "2.5"})
    assert saved["slabs"]["local"]["standard"] == {"first_kg": "1.0", "first_price": "40.10", "per_half_kg": "20.00"}


def _slab_change(zone, service, part, value):
    document = card_document()
    document["slabs"][zone].setdefault(service, {"first_kg": "0.5", "first_price": "1.00", "per_half_kg": "1.00"})
    if value is KeyError:
        del document["slabs"][zone][service][part]
    else:
        document["slabs"][zone][service][part] = value
    return document


@pytest.mark.parametrize("body, field", [
    (_slab_change("local", "standard", "first_price", "-40.00"), "slabs.local.standard.first_price"),
    (_slab_change("state", "express", "per_half_kg", -5), "slabs.state.express.per_half_kg"),
    (card_document(tax_rate="1.5"), "tax_rate"),
    (card_document(tax_rate=18), "tax_rate"),
    (card_document(volumetric_divisor=0), "volumetric_divisor"),
    (card_document(volumetric_divisor="0"), "volumetric_divisor"),
    (card_document(slabs={**card_document()["slabs"], "metro": card_document()["slabs"]["local"]}),
     "slabs.metro.standard.first_price"),
    (_slab_change("local", "overnight", "first_kg", "0.5"), "slabs.local.overnight.first_kg"),
    (_slab_change("local", "express", "first_kg", KeyError), "slabs.local.express.first_kg"),
    (_slab_change("state", "standard", "first_price", "12.345"), "slabs.state.standard.first_price"),
    (card_document(slabs={**card_document()["slabs"], "state": []}), "slabs.state"),
    (card_document(tax_rate=True), "tax_rate"),
    (card_document(cod={"min": "40.00"}), "cod.percent"),
    (card_document(currency="USD"), "currency"),
    (card_document(discount="5"), "discount"),
    ({**card_document(), "version": "one"}, "version"),
])
def test_every_refused_card_is_a_400_naming_the_field_and_writes_nothing(client, admin, app, body, field):
    response = client.post("/admin/rates", json=body, headers=admin.headers())
    assert response.status_code == 400
    assert field in response.get_json()["fields"], response.get_json()
    assert counts(app) == (0, 0)


@pytest.mark.parametrize("data, content_type", [
    (b"{not json", "application/json"),
    (b"[1, 2]", "application/json"),
    (b'"card"', "application/json"),
])
def test_a_body_that_is_not_a_json_object_is_a_400_and_writes_nothing(client, admin, app, data, content_type):
    response = client.post("/admin/rates", data=data, content_type=content_type, headers=admin.headers())
    assert response.status_code == 400
    assert "fields" in response.get_json()
    assert counts(app) == (0, 0)


def test_a_save_without_the_csrf_token_is_refused(client, admin, app):
    assert client.post("/admin/rates", json=card_document(tax_rate="0.12")).status_code == 400
    assert counts(app) == (0, 0)


def _form_of(document: dict, csrf_token: str) -> dict[str, str]:
    form = {"csrf_token": csrf_token, "version": "1", "tax_rate": document["tax_rate"],
            "volumetric_divisor": str(document["volumetric_divisor"]), "cod.min": document["cod"]["min"],
            "cod.percent": document["cod"]["percent"]}
    for zone, services in document["slabs"].items():
        for service, slab in services.items():
            form.update({f"slabs.{zone}.{service}.{part}": value for part, value in slab.items()})
    return form


def test_the_page_form_saves_a_version_and_shows_errors_on_their_fields(client, admin, app):
    html = {"Accept": "text/html"}
    page = client.get("/admin/rates", headers=html).get_data(as_text=True)
    assert 'name="slabs.local.standard.first_price"' in page and 'value="40.00"' in page
    form = _form_of(card_document(), admin.csrf_token)
    refused = client.post("/admin/rates", data={**form, "tax_rate": "1.5", "slabs.local.express.per_half_kg": "-3"},
                          headers=html)
    assert refused.status_code == 400
    body = refused.get_data(as_text=True)
    assert 'href="#tax_rate"' in body and 'href="#slabs.local.express.per_half_kg"' in body
    assert 'id="slabs.local.express.per_half_kg-error"' in body and 'value="-3"' in body
    assert counts(app) == (0, 0)
    bad_version = client.post("/admin/rates", data={**form, "version": "x"}, headers=html)
    assert bad_version.status_code == 400 and counts(app) == (0, 0)
    saved = client.post("/admin/rates", data={**form, "slabs.national.standard.first_price": "80.00"},
                        headers=html)
    assert saved.status_code == 302 and saved.headers["Location"].endswith("/admin/rates")
    assert "version 2" in client.get("/admin/rates", headers=html).get_data(as_text=True)
    assert counts(app) == (2, 1)
    stale = client.post("/admin/rates", data={**form, "slabs.national.standard.first_price": "85.00"},
                        headers=html)
    assert stale.status_code == 409 and "version 2 is in force" in stale.get_data(as_text=True)
    assert counts(app) == (2, 1)


def test_an_old_version_has_its_own_read_only_page(client, admin):
    client.post("/admin/rates", json=card_document(tax_rate="0.12"), headers=admin.headers())
    page = client.get("/admin/rates/versions/1", headers={"Accept": "text/html"}).get_data(as_text=True)
    assert "Rate card version 1" in page and "Version 2 is in force" in page
    assert 'action="/admin/rates"' not in page


# --- /admin/rates/quote ---------------------------------------------------------------------------------------------

def test_a_quote_prices_without_booking(client, auth):
    auth.login("viewer1", role="viewer")
    response = client.get("/admin/rates/quote?destination_pincode=560034&weight_kg=2&length_cm=40&width_cm=30"
                          "&height_cm=20&payment=cod&cod_amount=1500")
    assert response.status_code == 200
    assert response.get_json() == {"origin_pincode": "560001", "charges": {
        "zone": "local", "chargeable_weight_kg": "5.0", "freight": "220.00", "cod_fee": "40.00", "tax": "46.80",
        "total": "306.80", "currency": "INR", "rate_card_version": 1}}
    express = client.get("/admin/rates/quote?destination_pincode=682031&sender_pincode=682016&service=express")
    assert express.get_json()["charges"]["zone"] == "local" and express.get_json()["origin_pincode"] == "682016"


@pytest.mark.parametrize("query, field", [
    ("", "destination_pincode"),
    ("destination_pincode=68203", "destination_pincode"),
    ("destination_pincode=682031&weight=2", "weight"),
    ("destination_pincode=682031&weight_kg=0", "weight_kg"),
    ("destination_pincode=682031&service=overnight", "service"),
    ("destination_pincode=682031&payment=cod", "cod_amount"),
    ("destination_pincode=682031&length_cm=40", "width_cm"),
])
def test_a_bad_quote_is_a_400_naming_the_field(client, auth, query, field):
    auth.login()
    response = client.get(f"/admin/rates/quote?{query}")
    assert response.status_code == 400 and field in response.get_json()["fields"]


# --- receipts --------------------------------------------------------------------------------------------------------

def _require_pdf_tools():
    missing = [tool for tool in PDF_TOOLS if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {missing} are missing (./run-local.sh test installs poppler-utils)")
        pytest.skip(f"{missing} not installed: apt-get install poppler-utils")


def _pdf(tool: str, pdf: bytes, tmp_path, *args: str) -> str:
    path = tmp_path / f"{tool}.pdf"
    path.write_bytes(pdf)
    return subprocess.run([tool, *args, str(path), *(["-"] if tool == "pdftotext" else [])], check=True,
                          capture_output=True, text=True).stdout


def test_the_receipt_is_an_a5_pdf_with_the_tracking_id_and_the_total(client, auth, app, create_shipment,
                                                                     tmp_path):
    _require_pdf_tools()
    tracking_id = create_shipment(destination="14 Marine Drive, Ernakulam, Kochi 682031")
    auth.login("viewer1", role="viewer")
    response = client.get(f"/admin/shipments/{tracking_id.lower()}/receipt.pdf")
    assert response.status_code == 200 and response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    assert re.search(r"Page size:\s+419\.5\d* x 595\.2\d* pts", _pdf("pdfinfo", response.data, tmp_path))
    printed = _pdf("pdftotext", response.data, tmp_path, "-layout")
    # Priced when booked, national (560001 → 682031), first slab: 75.00 + 18 % = 88.50.
    for expected in (tracking_id, "Asha Rao", "Vikram Nair", "Marine Drive", "682031", "INR 75.00", "INR 13.50",
                     "INR 88.50", "Tax (18 %)", "Priced with rate card version 1 when booked"):
        assert expected in printed, expected
    for private in ("vikram@example.com", "98765", "43210", "+91"):
        assert private not in printed
    with app.app_context():
        entry = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "receipt_printed")).one()
        assert (entry.target_id, entry.actor, entry.details["total"]) == (tracking_id, "viewer1", "88.50")
    assert client.get("/admin/shipments/FFFFFFFF/receipt.pdf").status_code == 404


def test_a_receipt_needs_staff(client, create_shipment):
    tracking_id = create_shipment()
    assert client.get(f"/admin/shipments/{tracking_id}/receipt.pdf").status_code == 401


def _booked(**fields) -> SimpleNamespace:
    """A shipment as the booking will store it: names and destination, and its pricing fields when it has them."""
    base = {"tracking_id": "3F9A1C2B", "created_at": utcnow(), "sender_name": "Asha Rao",
            "receiver_name": "Vikram Nair", "destination": "14 Marine Drive, Kochi 682031"}
    return SimpleNamespace(**base, **fields)


def test_receipt_for_prints_the_charges_the_booking_stored(app_ctx):
    stored = {"zone": "state", "chargeable_weight_kg": "2.0", "freight": "145.00", "cod_fee": "0.00",
              "tax": "26.10", "total": "171.10", "currency": "INR", "rate_card_version": 1}
    data = receipt_for(_booked(charges=stored, service="standard", payment="prepaid", weight_kg=Decimal("1.8")))
    assert data.priced_at_booking and data.charges == stored and data.tax_rate == "0.18"
    assert data.weight_kg == "1.8"
    # a stored document without its version takes the shipment's rate_card_version
    data = receipt_for(_booked(charges={**stored, "rate_card_version": None}, rate_card_version=1))
    assert data.charges["rate_card_version"] == 1


def test_receipt_for_prices_a_booking_with_no_stored_charges_from_its_fields(app_ctx):
    data = receipt_for(_booked(charges=None, service="express", payment="cod", cod_amount=Decimal("1500"),
                               weight_kg=Decimal("2"), length_cm=Decimal(40), width_cm=Decimal(30),
                               height_cm=Decimal(20), destination_pincode="560034", sender_pincode=None))
    assert not data.priced_at_booking
    assert data.charges == {"zone": "local", "chargeable_weight_kg": "5.0", "freight": "330.00", "cod_fee": "40.00",
                            "tax": "66.60", "total": "436.60", "currency": "INR", "rate_card_version": 1}
    assert (data.dimensions_cm, data.cod_amount, data.origin_pincode) == ("40 × 30 × 20", "1500.00", "560001")
    # today's shipments have none of these fields: standard, prepaid, first slab, the PIN in the address
    bare = receipt_for(_booked())
    assert (bare.service, bare.payment, bare.destination_pincode) == ("standard", "prepaid", "682031")
    assert bare.charges["total"] == "88.50"


def test_render_receipt_prints_cod_and_the_note_on_pricing(tmp_path):
    _require_pdf_tools()
    data = ReceiptData(tracking_id="3F9A1C2B", booked_at=utcnow(), sender_name="Asha Rao",
                       receiver_name="Vikram Nair", destination="14 Marine Drive, Kochi 682031",
                       charges={"zone": "national", "chargeable_weight_kg": "5.0", "freight": "255.00",
                                "cod_fee": "40.00", "tax": "53.10", "total": "348.10", "currency": "INR",
                                "rate_card_version": 4},
                       service="express", payment="cod", origin_pincode="560001", destination_pincode="682031",
                       weight_kg="2", dimensions_cm="40 × 30 × 20", cod_amount="1500.00", tax_rate="0.18",
                       tracking_url="https://track.example.com/track/3F9A1C2B")
    printed = _pdf("pdftotext", render_receipt(data, "Asia/Kolkata"), tmp_path, "-layout")
    for expected in ("Express", "Cash on delivery (collect INR 1500.00)", "COD fee", "INR 40.00", "INR 348.10",
                     "40 × 30 × 20 cm", "5.0 kg", "version 4 when booked", "https://track.example.com/track/3F9A1C2B"):
        assert expected in printed, expected


def test_a_receipt_prints_hindi_names_and_addresses_as_typed(tmp_path):
    _require_pdf_tools()
    data = ReceiptData(tracking_id="3F9A1C2B", booked_at=utcnow(), sender_name="आशा राव",
                       receiver_name="विक्रम नायर", destination="14 मरीन ड्राइव, कोच्चि 682031",
                       charges={"zone": "national", "chargeable_weight_kg": "0.5", "freight": "75.00",
                                "cod_fee": "0.00", "tax": "13.50", "total": "88.50", "currency": "INR",
                                "rate_card_version": 1})
    printed = _pdf("pdftotext", render_receipt(data, "Asia/Kolkata"), tmp_path, "-layout")
    for expected in ("आशा राव", "विक्रम नायर", "कोच्चि", "INR 88.50"):
        assert expected in printed, expected
