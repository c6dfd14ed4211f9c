"""The recipient's answer to a failed delivery (/r/<token>) in headless Chromium at phone width (360 px), in English
and in Hindi (the booking's language), JavaScript off (the page needs none): a reattempt on a chosen day with
instructions, answered through the form. No sideways scroll, no CSP violation, no personal data."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from app.extensions import db
from app.models import NonDeliveryReport, Shipment
from app.services.ndr.reports import answer_token
from app.services.shipments.status_changes import record_status_change
from tests.browser.conftest import WIDTHS, audit, page_overflow
from tests.conftest import VALID_BOOKING

pytestmark = pytest.mark.browser

TEXTS = {
    "en": {"heading": "Delivery of shipment", "reattempt": "Try again", "day": "Day of the next attempt",
           "instructions": "Instructions for the courier", "mobile": "Another mobile number to call",
           "send": "Send my answer",
           "saved": "Thank you: your answer is saved."},
    "hi": {"heading": "की डिलीवरी", "reattempt": "फिर से प्रयास करें", "day": "अगले प्रयास का दिन",
           "instructions": "कूरियर के लिए निर्देश", "mobile": "कॉल करने के लिए दूसरा मोबाइल नंबर",
           "send": "मेरा जवाब भेजें",
           "saved": "धन्यवाद: आपका जवाब सहेज लिया गया है।"},
}


def attempted_path(app, client, lang: str) -> str:
    response = client.post(f"/create?lang={lang}", json=VALID_BOOKING)
    tracking_id = response.get_json()["tracking_id"]
    with app.app_context():
        for status in ("Picked Up", "In Transit", "Out for Delivery", "Delivery Attempted"):
            record_status_change(tracking_id, status, "Kochi Hub", None, "operator1",
                                 attempt_reason="nobody_home" if status == "Delivery Attempted" else None)
        db.session.commit()
        shipment_id = db.session.scalar(select(Shipment.id).where(Shipment.tracking_id == tracking_id))
        return f"/r/{answer_token(shipment_id)}"


def stored_answer(app) -> NonDeliveryReport:
    with app.app_context():
        return db.session.scalars(select(NonDeliveryReport)).one()


@pytest.mark.parametrize("lang", ["en", "hi"])
def test_a_reattempt_answered_on_a_phone_in_the_booking_language(app, client, open_tab, lang):
    words = TEXTS[lang]
    path = attempted_path(app, client, lang)
    tab = open_tab(javascript=False)
    page = tab.page
    page.set_viewport_size(WIDTHS["phone"])
    page.goto(path)
    expect(page.get_by_role("heading", level=1)).to_contain_text(words["heading"])
    assert page.locator("html").get_attribute("lang") == lang
    assert page_overflow(page) is None
    html = page.locator("body").inner_html()
    for private in (VALID_BOOKING["receiver_name"], VALID_BOOKING["destination"], VALID_BOOKING["email"], "98765"):
        assert private not in html, private

    page.get_by_label(words["reattempt"]).check()
    page.get_by_label(words["mobile"]).fill("12")  # not a mobile number: refused, nothing saved
    page.get_by_role("button", name=words["send"]).click()
    expect(page.locator(".error-summary")).to_be_visible()
    page.get_by_label(words["mobile"]).fill("")
    assert page_overflow(page) is None
    assert stored_answer(app).action is None

    page.get_by_label(words["reattempt"]).check()
    day = page.get_by_label(words["day"])
    day.select_option(index=2)  # the day after tomorrow
    chosen = day.input_value()
    page.get_by_label(words["instructions"]).fill("Leave it with the guard at gate 2")
    page.get_by_role("button", name=words["send"]).click()
    expect(page.get_by_role("status")).to_contain_text(words["saved"])
    assert page_overflow(page) is None
    answer = stored_answer(app)
    assert (answer.action, answer.answer_date.isoformat(), answer.instructions, answer.answered_by) == (
        "reattempt", chosen, "Leave it with the guard at gate 2", "recipient")
    if lang == "en":  # with JavaScript on, for the accessibility check
        checked = open_tab().page
        checked.set_viewport_size(WIDTHS["phone"])
        checked.goto(path)
        audit(checked, "ndr-answered")
