"""What a label carries: a page per piece, the sort code, the receiver's mobile, weight, service, the sender's PIN,
the COD box, and Hindi names and addresses shaped in an embedded font. Read back as people and scanners read it:
pdftotext for the words, pdffonts for the fonts, zbarimg for every barcode and QR code."""
from __future__ import annotations

import re
import subprocess
import unicodedata
from datetime import UTC, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
from reportlab.pdfbase import pdfmetrics

from app.domain.pincodes import normalise_pincode, pincode_from_destination
from app.errors import ValidationError
from app.i18n.locales import format_rupees, format_weight_kg
from app.services.shipments.contacts import format_mobile
from app.services.shipments.label_text import BOLD, REGULAR, register_fonts, text_width
from app.services.shipments.labels import (
    MAX_PAGES,
    LabelData,
    LabelOptions,
    label_data,
    render_label_pages,
)
from tests.test_labels_export import _decode_codes, _pdf_info, _pdf_text, _require_tools

OPTIONS = LabelOptions(size="4x6", public_base_url="http://waybill.test", timezone="Asia/Kolkata")
BOOKED = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
HINDI_RECEIVER = "विक्रम नायर"
HINDI_SENDER = "आशा राव"
HINDI_DESTINATION = "फ्लैट 3, श्री कृष्ण अपार्टमेंट, एर्णाकुलम, कोच्चि 682016"


def a_label(**fields) -> LabelData:
    values = {"tracking_id": "3F9A1C2B", "sender_name": "Asha Rao", "receiver_name": "Vikram Nair",
              "destination": "12 MG Road, Ernakulam, Kochi", "mobile": "+919876543210", "booked_at": BOOKED,
              "sender_pincode": "560001", "destination_pincode": "682016", "weight_kg": Decimal("2.50"),
              "pieces": 1, "service": "express", "payment": "prepaid", "cod_amount": None}
    return LabelData(**{**values, **fields})


def page_texts(pdf: bytes, tmp_path) -> list[str]:
    pages = int(re.search(r"Pages:\s+(\d+)", _pdf_info(pdf, tmp_path)).group(1))
    (tmp_path / "pages.pdf").write_bytes(pdf)
    return [subprocess.run(["pdftotext", "-f", str(n), "-l", str(n), "-layout", str(tmp_path / "pages.pdf"), "-"],
                           check=True, capture_output=True, text=True).stdout for n in range(1, pages + 1)]


def word_heights(pdf: bytes, tmp_path) -> dict[str, float]:
    """Each word of the first page with the height of its box (the largest, for a word printed twice)."""
    (tmp_path / "words.pdf").write_bytes(pdf)
    html = subprocess.run(["pdftotext", "-bbox", "-f", "1", "-l", "1", str(tmp_path / "words.pdf"), "-"],
                          check=True, capture_output=True, text=True).stdout
    heights: dict[str, float] = {}
    for y_min, y_max, word in re.findall(r'<word xMin="[\d.]+" yMin="([\d.]+)" xMax="[\d.]+" yMax="([\d.]+)">'
                                         r"([^<]*)</word>", html):
        heights[word] = max(heights.get(word, 0.0), float(y_max) - float(y_min))
    return heights


def pdf_fonts(pdf: bytes, tmp_path) -> dict[str, str]:
    """Font name (without its subset tag) → "yes" or "no", as pdffonts reports it embedded."""
    (tmp_path / "fonts.pdf").write_bytes(pdf)
    listing = subprocess.run(["pdffonts", str(tmp_path / "fonts.pdf")], check=True, capture_output=True,
                             text=True).stdout.splitlines()[2:]
    fonts = {}
    for line in listing:
        name, *rest = line.split()
        fonts[name.split("+")[-1]] = next(word for word in rest if word in ("yes", "no"))
    return fonts


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def test_each_piece_gets_its_own_label_with_the_shipments_barcode(tmp_path):
    """Hubs scan the tracking ID, so every piece's Code 128 is the shipment's ID; the piece is printed."""
    _require_tools()
    pdf = render_label_pages([a_label(pieces=3)], OPTIONS)
    texts = page_texts(pdf, tmp_path)
    assert len(texts) == 3
    for number, text in enumerate(texts, start=1):
        assert f"{number} of 3" in text
        assert "3F9A1C2B" in text
    codes = _decode_codes(pdf, tmp_path)
    assert codes["CODE-128"] == ["3F9A1C2B"] * 3
    assert codes["QR-Code"] == ["http://waybill.test/track/3F9A1C2B"] * 3


def test_a_batch_prints_every_piece_of_each_shipment_in_order(tmp_path):
    _require_tools()
    pdf = render_label_pages([a_label(tracking_id="0B7E44D1", pieces=2), a_label(tracking_id="5C21D9E0")],
                             OPTIONS)
    texts = page_texts(pdf, tmp_path)
    assert [re.search(r"\d of \d", text).group(0) for text in texts] == ["1 of 2", "2 of 2", "1 of 1"]
    assert _decode_codes(pdf, tmp_path)["CODE-128"] == ["0B7E44D1", "0B7E44D1", "5C21D9E0"]


def test_too_many_pieces_at_once_are_refused():
    with pytest.raises(ValidationError) as refused:
        render_label_pages([a_label(pieces=MAX_PAGES), a_label(tracking_id="0B7E44D1")], OPTIONS)
    assert "tracking_ids" in refused.value.fields


def test_cod_prints_the_amount_to_collect_and_prepaid_does_not(tmp_path):
    _require_tools()
    cod = _pdf_text(render_label_pages([a_label(payment="cod", cod_amount=Decimal("1250"))], OPTIONS), tmp_path)
    assert "COLLECT ₹1,250.00" in cod
    assert "CASH ON DELIVERY" in cod
    prepaid = _pdf_text(render_label_pages([a_label()], OPTIONS), tmp_path)
    assert "COLLECT" not in prepaid and "₹" not in prepaid
    assert "PREPAID" in prepaid
    lakh = _pdf_text(render_label_pages([a_label(payment="cod", cod_amount=Decimal("125000.005"))], OPTIONS),
                     tmp_path)
    assert "COLLECT ₹1,25,000.01" in lakh  # Indian grouping, rounded half up to the paisa


def test_the_label_carries_the_full_mobile_weight_service_and_the_senders_name_and_pin(tmp_path):
    _require_tools()
    text = _pdf_text(render_label_pages([a_label()], OPTIONS), tmp_path)
    for expected in ("+91 98765 43210", "EXPRESS", "2.5 kg", "Asha Rao", "PIN 560001", "Vikram Nair",
                     "12 MG Road, Ernakulam, Kochi", "Booked 01 Dec 2026", "682016"):
        assert expected in text, expected
    standard = _pdf_text(render_label_pages([a_label(service="standard", weight_kg=Decimal("0.125"))], OPTIONS),
                         tmp_path)
    assert "STANDARD · 0.125 kg" in standard


def test_the_destination_pin_is_the_largest_text_on_the_label(tmp_path):
    _require_tools()
    heights = word_heights(render_label_pages([a_label()], OPTIONS), tmp_path)
    assert heights["682016"] >= 30
    assert heights["682016"] > 2 * heights["Ernakulam,"]
    assert heights["682016"] > heights["3F9A1C2B"]


def test_without_a_booked_pin_the_sort_code_is_the_last_pin_in_the_destination(tmp_path):
    _require_tools()
    label = a_label(destination_pincode=None, destination="Flat 110001, 12 MG Road, Kochi 682016")
    assert label.sort_code == "682016"
    heights = word_heights(render_label_pages([label], OPTIONS), tmp_path)
    assert heights["682016"] >= 30
    assert a_label(destination_pincode=None, destination="12 MG Road, Kochi").sort_code is None
    assert a_label(destination_pincode="682031", destination="Kochi 682016").sort_code == "682031"


@pytest.mark.parametrize("text, pin", [
    ("12 MG Road, Kochi 682016", "682016"),
    ("Kochi-682016, Kerala", "682016"),
    ("PIN 560001 then 682016", "682016"),
    ("कोच्चि ६८२०१६", "682016"),  # Devanagari digits, as some Hindi addresses are written
    ("call 9876543210", None),  # ten digits are a phone number, not a PIN
    ("Plot 012345", None),  # no PIN starts with 0
    ("", None),
    (None, None),
])
def test_the_sort_code_found_in_a_destination(text, pin):
    assert normalise_pincode(pincode_from_destination(text)) == pin
    assert a_label(destination_pincode=None, destination=text or "").sort_code == pin


def test_label_data_reads_the_booking_fields_when_the_shipment_has_them():
    booked = SimpleNamespace(tracking_id="3F9A1C2B", sender_name="Asha Rao", receiver_name="Vikram Nair",
                             destination="Kochi", mobile="+919876543210", created_at=BOOKED,
                             sender_pincode="560001", destination_pincode="682016", weight_kg=Decimal("2.50"),
                             pieces=3, service="express", payment="cod", cod_amount=Decimal("1250.00"),
                             sender_mobile="+919812345678", email="vikram@example.com")
    assert label_data(booked) == LabelData(
        tracking_id="3F9A1C2B", sender_name="Asha Rao", receiver_name="Vikram Nair", destination="Kochi",
        mobile="+919876543210", booked_at=BOOKED, sender_pincode="560001", destination_pincode="682016",
        weight_kg=Decimal("2.50"), pieces=3, service="express", payment="cod", cod_amount=Decimal("1250.00"))


def test_label_data_of_a_shipment_booked_before_the_parcel_details_is_one_piece_with_what_it_has():
    # As migration 0019 leaves a shipment booked before it: one prepaid standard piece, no PIN codes or weight.
    older = SimpleNamespace(tracking_id="3F9A1C2B", sender_name="Asha Rao", receiver_name="Vikram Nair",
                            destination="12 MG Road, Kochi 682016", mobile="+919876543210", created_at=BOOKED,
                            sender_pincode=None, destination_pincode=None, weight_kg=None, pieces=1,
                            service="standard", payment="prepaid", cod_amount=None)
    label = label_data(older)
    assert (label.pieces, label.weight_kg, label.service, label.payment, label.cod_amount) == \
        (1, None, "standard", "prepaid", None)
    assert label.sort_code == "682016" and not label.collect_on_delivery


def test_devanagari_is_shaped_with_harfbuzz():
    """Without shaping, क्र would print as क, a virama and र side by side: shaped, it is one narrower conjunct."""
    register_fonts()
    assert pdfmetrics.getFont(REGULAR).shapable and pdfmetrics.getFont(BOLD).shapable
    assert text_width("क्र", REGULAR, 10) < pdfmetrics.stringWidth("क्र", REGULAR, 10)
    assert text_width("Kochi", REGULAR, 10) == pdfmetrics.stringWidth("Kochi", REGULAR, 10)


def test_money_weight_and_mobile_formats():
    assert format_rupees(Decimal("1250")) == "₹1,250.00"
    assert format_rupees(Decimal("0.005")) == "₹0.01"
    assert format_weight_kg(Decimal("2.500")) == "2.5 kg"
    assert format_weight_kg(Decimal("1250")) == "1,250 kg"
    assert format_mobile("+919876543210") == "+91 98765 43210"
    assert format_mobile("not a number") == "not a number"


@pytest.fixture
def staff(auth):
    auth.login()
    return auth


def test_a_hindi_booking_prints_shaped_in_an_embedded_font_and_reads_back(client, staff, create_shipment, tmp_path):
    """Shaped Devanagari is drawn in visual order (a vowel sign before its consonant, conjuncts as one glyph);
    each shaped line carries the text as typed (ActualText), so pdftotext gives back exactly what was booked."""
    _require_tools()
    tracking_id = create_shipment(sender_name=HINDI_SENDER, receiver_name=HINDI_RECEIVER,
                                  destination=HINDI_DESTINATION)
    response = client.get(f"/admin/shipments/{tracking_id}/label.pdf")
    assert response.status_code == 200
    text = nfc(_pdf_text(response.data, tmp_path))
    for typed in (HINDI_RECEIVER, HINDI_SENDER, HINDI_DESTINATION):
        assert nfc(typed) in text, typed
    assert "\u25a0" not in text and "\ufffd" not in text
    assert "682016" in text and "1 of 1" in text and "+91 98765 43210" in text
    fonts = pdf_fonts(response.data, tmp_path)
    assert fonts["NotoSansDevanagari-Regular"] == "yes" and fonts["NotoSansDevanagari-Bold"] == "yes"
    codes = _decode_codes(response.data, tmp_path)
    assert codes == {"CODE-128": [tracking_id], "QR-Code": [f"http://waybill.test/track/{tracking_id}"]}


def test_labels_are_for_staff_only(client, create_shipment, auth, issue_key):
    """The receiver's full mobile is on a label: neither the page nor the API serves one without credentials."""
    tracking_id = create_shipment()
    assert client.get(f"/admin/shipments/{tracking_id}/label.pdf").status_code == 401
    assert client.post("/admin/labels.pdf", json={"tracking_ids": [tracking_id]}).status_code == 401
    assert client.get(f"/api/v1/shipments/{tracking_id}/label").status_code == 401
    key = issue_key(role="viewer")
    label = client.get(f"/api/v1/shipments/{tracking_id}/label", headers={"Authorization": f"Bearer {key}"})
    assert label.status_code == 200 and label.mimetype == "application/pdf"
