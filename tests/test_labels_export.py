"""Printable labels that really scan, and the CSV export of shipments."""
from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
from datetime import UTC, datetime

import pytest
from babel.dates import format_date
from sqlalchemy import select

from app.domain.timeutil import to_local
from app.errors import ValidationError
from app.extensions import db
from app.models import AuditEntry, Shipment
from app.services.shipments.booking import NewShipment, create_shipment
from app.services.shipments.dashboard import ShipmentFilter
from app.services.shipments.exports import export_csv, neutralise_formula
from app.services.shipments.labels import LabelOptions, print_label, print_labels, shipments_for_labels
from tests.conftest import VALID_BOOKING

TOOLS = ("pdftoppm", "pdftotext", "pdfinfo", "pdffonts", "zbarimg")


def _require_tools():
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI=true but {missing} are missing (./run-local.sh test installs poppler-utils, zbar-tools)")
        pytest.skip(f"{missing} not installed: apt-get install poppler-utils zbar-tools")


def _decode_codes(pdf: bytes, tmp_path) -> dict[str, list[str]]:
    """Every barcode on every page, by symbology, as a real scanner decoder (zbar) reads the rendered page."""
    (tmp_path / "label.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "200", "-png", str(tmp_path / "label.pdf"), str(tmp_path / "page")],
                   check=True, capture_output=True)
    pages = sorted(str(p) for p in tmp_path.glob("page*.png"))
    found = subprocess.run(["zbarimg", "-q", *pages], capture_output=True, text=True)
    codes: dict[str, list[str]] = {}
    for line in found.stdout.splitlines():
        symbology, _, value = line.partition(":")
        codes.setdefault(symbology, []).append(value)
    return codes


def _pdf_info(pdf: bytes, tmp_path) -> str:
    (tmp_path / "info.pdf").write_bytes(pdf)
    return subprocess.run(["pdfinfo", str(tmp_path / "info.pdf")], check=True, capture_output=True,
                          text=True).stdout


def _pdf_text(pdf: bytes, tmp_path) -> str:
    (tmp_path / "text.pdf").write_bytes(pdf)
    return subprocess.run(["pdftotext", "-layout", str(tmp_path / "text.pdf"), "-"], check=True,
                          capture_output=True, text=True).stdout


@pytest.fixture
def staff(auth):
    auth.login()
    return auth


def test_a_label_scans_back_to_its_tracking_id_and_url(client, staff, create_shipment, tmp_path):
    _require_tools()
    tracking_id = create_shipment(destination="12 MG Road, Ernakulam, Kochi 682016")
    response = client.get(f"/admin/shipments/{tracking_id}/label.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert response.headers["Cache-Control"] == "no-store"
    codes = _decode_codes(response.data, tmp_path)
    assert codes.get("CODE-128") == [tracking_id]
    assert codes.get("QR-Code") == [f"http://waybill.test/track/{tracking_id}"]
    text = _pdf_text(response.data, tmp_path)
    # The receiver's full mobile is meant to be there: the courier calls the receiver. The email never is.
    for expected in (tracking_id, "Vikram Nair", "12 MG Road", "Asha Rao", "Booked", "Mobile +91 98765 43210",
                     "682016", "1 of 1"):
        assert expected in text
    assert "vikram@example.com" not in text
    assert re.search(r"Page size:\s+288 x 432 pts", _pdf_info(response.data, tmp_path))


def test_a_label_is_printed_in_english_for_a_hindi_booking_on_a_hindi_page(client, staff, app, tmp_path):
    """The booking date is formatted with Babel in the label's language, English, as all the label's own words
    are: hub staff and couriers anywhere read it. Neither the booking's nor the page's language changes that."""
    _require_tools()
    tracking_id = client.post("/create?lang=hi", json=VALID_BOOKING).get_json()["tracking_id"]
    response = client.get(f"/admin/shipments/{tracking_id}/label.pdf?lang=hi")
    assert response.status_code == 200
    with app.app_context():
        booked_at = db.session.scalar(select(Shipment.created_at).where(Shipment.tracking_id == tracking_id))
    booked = format_date(to_local(booked_at, app.config["DISPLAY_TIMEZONE"]), "dd MMM y", locale="en")
    text = _pdf_text(response.data, tmp_path)
    assert f"Booked {booked}" in text
    assert not re.search("[\u0900-\u097f\u25a0]", text)  # no Devanagari, no missing-glyph boxes


def test_a6_labels_and_bad_sizes(client, staff, create_shipment, tmp_path):
    _require_tools()
    tracking_id = create_shipment()
    response = client.get(f"/admin/shipments/{tracking_id}/label.pdf?size=A6")
    assert response.status_code == 200
    assert re.search(r"Page size:\s+297\.6\d* x 419\.5\d* pts", _pdf_info(response.data, tmp_path))
    assert _decode_codes(response.data, tmp_path).get("CODE-128") == [tracking_id]
    bad = client.get(f"/admin/shipments/{tracking_id}/label.pdf?size=letter")
    assert bad.status_code == 400 and "size" in bad.get_json()["fields"]
    assert client.get("/admin/shipments/FFFFFFFF/label.pdf").status_code == 404


def test_batch_labels_one_page_each_in_order_without_repeats(client, staff, create_shipment, tmp_path, app):
    _require_tools()
    ids = [create_shipment(receiver_name=f"Receiver {n}") for n in range(3)]
    response = client.post("/admin/labels.pdf", json={"tracking_ids": [ids[2], ids[0], ids[1], ids[0].lower()]},
                           headers=staff.headers())
    assert response.status_code == 200
    assert re.search(r"Pages:\s+3\b", _pdf_info(response.data, tmp_path))
    assert _decode_codes(response.data, tmp_path)["CODE-128"] == [ids[2], ids[0], ids[1]]
    with app.app_context():
        row = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "labels_printed")).one()
        assert row.details["count"] == 3 and row.actor == "operator1"


def test_batch_labels_from_the_dashboard_selection_form(client, staff, create_shipment, tmp_path):
    _require_tools()
    ids = [create_shipment() for _ in range(2)]
    response = client.post("/admin/labels.pdf", data={"tracking_ids": ids, "size": "a6",
                                                      "csrf_token": staff.csrf_token})
    assert response.status_code == 200
    assert sorted(_decode_codes(response.data, tmp_path)["CODE-128"]) == sorted(ids)


@pytest.mark.parametrize("body, field", [
    ({"tracking_ids": []}, "tracking_ids"),
    ({"tracking_ids": "AB12CD34"}, "tracking_ids"),
    ({"tracking_ids": [1, 2]}, "tracking_ids"),
    ({"tracking_ids": ["FFFFFFFF"]}, "tracking_ids"),
    ({"tracking_ids": ["not an id"]}, "tracking_ids"),
    ({"tracking_ids": ["AB12CD34"] * 501}, "tracking_ids"),
    ({"tracking_ids": ["AB12CD34"], "size": 6}, "size"),
])
def test_bad_batch_requests_are_400_and_audit_nothing(client, staff, create_shipment, app, body, field):
    create_shipment()
    response = client.post("/admin/labels.pdf", json=body, headers=staff.headers())
    assert response.status_code == 400
    assert field in response.get_json()["fields"]
    with app.app_context():
        assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "labels_printed")).all() == []


def test_batch_label_form_needs_csrf(client, staff, create_shipment, app):
    tracking_id = create_shipment()
    response = client.post("/admin/labels.pdf", data={"tracking_ids": [tracking_id]})
    assert response.status_code == 400
    with app.app_context():
        assert db.session.scalars(select(AuditEntry).where(AuditEntry.action == "labels_printed")).all() == []


def test_viewers_may_print_labels_and_export_anonymous_may_not(client, auth, create_shipment):
    tracking_id = create_shipment()
    for url in (f"/admin/shipments/{tracking_id}/label.pdf", "/admin/shipments.csv"):
        assert client.get(url).status_code == 401
    auth.login("support1", role="viewer")
    assert client.get(f"/admin/shipments/{tracking_id}/label.pdf").status_code == 200
    assert client.get("/admin/shipments.csv").status_code == 200


def _csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_export_is_streamed_csv_with_contact_details_and_filters(client, staff, create_shipment, app):
    first = create_shipment(receiver_name="Meera Pillai")
    second = create_shipment()
    client.post(f"/update/{second}", json={"status": "Picked Up", "location": "Kochi Hub"}, headers=staff.headers())
    response = client.get("/admin/shipments.csv")
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.is_streamed
    assert "attachment" in response.headers["Content-Disposition"]
    rows = _csv_rows(response)
    assert [r["tracking_id"] for r in rows] == [first, second]
    assert rows[0]["receiver_name"] == "Meera Pillai"
    assert rows[0]["email"] == "vikram@example.com" and rows[0]["mobile"] == "'+919876543210"
    assert rows[0]["created_at"].endswith("Z")
    assert [r["tracking_id"] for r in _csv_rows(client.get("/admin/shipments.csv?status=Picked+Up"))] == [second]
    assert [r["tracking_id"] for r in _csv_rows(client.get("/admin/shipments.csv?q=meera"))] == [first]
    assert _csv_rows(client.get("/admin/shipments.csv?booked_to=2000-01-01")) == []
    assert len(_csv_rows(client.get("/admin/shipments.csv?booked_from=2000-01-01"))) == 2
    with app.app_context():
        exports = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "shipments_exported")).all()
        assert len(exports) == 5
        assert exports[1].details["status"] == "Picked Up"


def test_export_neutralises_formulas(client, staff, create_shipment):
    create_shipment(sender_name="=HYPERLINK(\"http://evil.example\")", receiver_name="@SUM(A1)",
                    destination="-2+3, Kochi")
    row = _csv_rows(client.get("/admin/shipments.csv"))[0]
    assert row["sender_name"] == "'=HYPERLINK(\"http://evil.example\")"
    assert row["receiver_name"] == "'@SUM(A1)"
    assert row["destination"] == "'-2+3, Kochi"
    assert neutralise_formula("Kochi") == "Kochi"
    assert neutralise_formula("\t=1") == "'\t=1"


@pytest.mark.parametrize("query", ["booked_from=yesterday", "booked_from=2026-05-02&booked_to=2026-05-01",
                                   "status=Lost", "q=" + "x" * 101, "booked_from=0001-01-01",
                                   "booked_to=9999-12-31"])
def test_bad_export_filters_are_400(client, staff, query, app):
    response = client.get(f"/admin/shipments.csv?{query}")
    assert response.status_code == 400
    assert response.get_json()["fields"]
    with app.app_context():
        # Only the staff account's creation and sign-in are on record.
        assert db.session.scalars(select(AuditEntry).where(
            AuditEntry.action.not_in(("user_created", "login")))).all() == []


def test_export_of_nothing_is_just_the_header(client, staff):
    response = client.get("/admin/shipments.csv")
    assert response.get_data(as_text=True).splitlines() == [
        "tracking_id,status,created_at,updated_at,sender_name,receiver_name,mobile,email,destination"]


# --- audited by the services themselves, whichever door calls them ----------------------------------------------

NEW = NewShipment("Asha Rao", "Vikram Nair", "+919876543210", "vikram@example.com", "Kochi")
OPTIONS = LabelOptions(size="a6", public_base_url="http://waybill.test", timezone="Asia/Kolkata")


def _audit(action: str) -> list[AuditEntry]:
    return db.session.scalars(select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)).all()


def test_printing_and_exporting_are_audited_once_by_the_service_without_any_request(app_ctx):
    """What a command or a job calling the services gets: the same one row per action as a page or the API."""
    first, second = (create_shipment(NEW, actor="setup") for _ in range(2))
    assert print_label(first, OPTIONS, actor="night-job").startswith(b"%PDF")
    print_labels(shipments_for_labels([second.tracking_id, first.tracking_id]), OPTIONS, actor="night-job")
    chunks = export_csv(ShipmentFilter(status="Booked", booked_since=datetime(2026, 5, 1, tzinfo=UTC)), "IN",
                        actor="night-job")
    assert [(r.target_type, r.target_id, r.details) for r in _audit("labels_printed")] == [
        ("shipment", first.tracking_id, {"count": 1, "size": "a6"}),
        ("shipments", "2 shipments", {"count": 2, "size": "a6",
                                      "tracking_ids": [second.tracking_id, first.tracking_id]})]
    [exported] = _audit("shipments_exported")  # audited when asked for, before a row is read
    assert (exported.details["search"], exported.details["status"], exported.details["booked_to"]) == (
        False, "Booked", None)
    assert "".join(chunks).startswith("tracking_id,")
    assert len(_audit("shipments_exported")) == 1


def test_a_staff_booking_is_audited_by_the_booking_service_and_a_customers_is_not(app_ctx):
    customer = create_shipment(NEW)
    staff = create_shipment(NEW, actor="integrator", audit_details={"via": "api", "api_key_id": 7})
    [row] = _audit("shipment_created")
    assert (row.actor, row.target_id, row.details) == ("integrator", staff.tracking_id,
                                                       {"via": "api", "api_key_id": 7})
    assert customer.tracking_id != staff.tracking_id


def test_labels_refused_before_printing_audit_nothing(app_ctx):
    with pytest.raises(ValidationError):
        print_labels(shipments_for_labels(["FFFFFFFF"]), OPTIONS, actor="night-job")
    assert _audit("labels_printed") == []
