"""What a label carries: Hindi names and addresses shaped in an embedded font. Read back as people and scanners
read it: pdftotext for the words, pdffonts for the fonts, zbarimg for every barcode and QR code."""
from __future__ import annotations

import subprocess
import unicodedata

import pytest
from reportlab.pdfbase import pdfmetrics

from app.services.shipments.label_text import BOLD, REGULAR, register_fonts, text_width
from tests.test_labels_export import _decode_codes, _pdf_text, _require_tools

HINDI_RECEIVER = "विक्रम नायर"
HINDI_SENDER = "आशा राव"
HINDI_DESTINATION = "फ्लैट 3, श्री कृष्ण अपार्टमेंट, एर्णाकुलम, कोच्चि 682016"


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


def test_devanagari_is_shaped_with_harfbuzz():
    """Without shaping, क्र would print as क, a virama and र side by side: shaped, it is one narrower conjunct."""
    register_fonts()
    assert pdfmetrics.getFont(REGULAR).shapable and pdfmetrics.getFont(BOLD).shapable
    assert text_width("क्र", REGULAR, 10) < pdfmetrics.stringWidth("क्र", REGULAR, 10)
    assert text_width("Kochi", REGULAR, 10) == pdfmetrics.stringWidth("Kochi", REGULAR, 10)


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
    fonts = pdf_fonts(response.data, tmp_path)
    assert fonts["NotoSansDevanagari-Regular"] == "yes" and fonts["NotoSansDevanagari-Bold"] == "yes"
    codes = _decode_codes(response.data, tmp_path)
    assert codes == {"CODE-128": [tracking_id], "QR-Code": [f"http://waybill.test/track/{tracking_id}"]}
