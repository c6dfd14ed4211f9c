"""Proof of delivery in headless Chromium: the receiver signs on the canvas with the mouse, the operator records
the delivery, the stored PNG holds the drawing, staff see it and the public page shows the first name only; with
JavaScript off the form still works; nothing scrolls sideways at 360 px."""
from __future__ import annotations

import io
import re

import pytest
from PIL import Image
from playwright.sync_api import expect
from sqlalchemy import select

from app import create_app
from app.extensions import db
from app.models import DeliveryProof
from tests.browser.conftest import REFRESH_SECONDS, WIDTHS, audit, page_overflow
from tests.browser.test_portals import PASSWORD, sign_in
from tests.conftest import clean_database

pytestmark = pytest.mark.browser

RECEIVER = "Ravi Kumar Menon"


@pytest.fixture
def storage_dir(tmp_path):
    return tmp_path / "uploads"


@pytest.fixture
def app(make_config, storage_dir):
    application = create_app(make_config(TRACK_REFRESH_SECONDS=REFRESH_SECONDS, STORAGE_DIR=str(storage_dir)))
    yield application
    clean_database(application)
    with application.app_context():
        db.engine.dispose()


@pytest.fixture
def at_the_door(create_shipment, auth, make_user):
    """A shipment Out for Delivery, and an operator account to sign in with."""
    tracking_id = create_shipment()
    auth.login("dispatch", role="operator")
    for status in ("Picked Up", "In Transit", "Out for Delivery"):
        response = auth.client.post(f"/update/{tracking_id}", headers=auth.headers(),
                                    json={"status": status, "location": "Kochi Hub"})
        assert response.status_code == 200, response.get_json()
    make_user("courier1", PASSWORD, "operator")
    return tracking_id


def draw_signature(page) -> None:
    """A scribble with real mouse moves across the signature pad."""
    pad = page.locator("[data-signature-pad]")
    pad.scroll_into_view_if_needed()  # mouse events only reach what is inside the viewport
    box = pad.bounding_box()
    assert box and box["width"] > 100
    left, top, width, height = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(left + width * 0.1, top + height * 0.7)
    page.mouse.down()
    for fraction_x, fraction_y in ((0.25, 0.2), (0.4, 0.8), (0.55, 0.3), (0.7, 0.75), (0.9, 0.25)):
        page.mouse.move(left + width * fraction_x, top + height * fraction_y, steps=8)
    page.mouse.up()


def stored_proof(app) -> DeliveryProof:
    with app.app_context():
        proof = db.session.scalars(select(DeliveryProof)).one()
        db.session.expunge(proof)
        return proof


def inked_pixels(png: bytes) -> int:
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG"
        alpha = image.convert("RGBA").getchannel("A")
        return sum(alpha.histogram()[1:])  # pixels with any ink at all


@pytest.mark.parametrize("width", ["desktop", "phone"])
def test_a_delivery_signed_on_the_canvas(open_tab, at_the_door, app, storage_dir, width):
    tab = open_tab()
    page = tab.page
    page.set_viewport_size(WIDTHS[width])
    sign_in(page, "courier1")
    page.goto(f"/admin/shipments/{at_the_door}")

    # With JavaScript the proof fields follow the chosen status.
    received_by = page.get_by_label("Received by")
    reason = page.get_by_label("Why could it not be delivered?")
    expect(received_by).to_be_hidden()
    page.get_by_label("New status").select_option("Delivery Attempted")
    expect(reason).to_be_visible()
    expect(received_by).to_be_hidden()
    page.get_by_label("New status").select_option("Delivered")
    expect(received_by).to_be_visible()
    expect(reason).to_be_hidden()
    expect(page.locator("[data-signature-pad]")).to_be_visible()
    assert page_overflow(page) is None

    # A first scribble, cleared, then the real signature.
    draw_signature(page)
    expect(page.locator("[data-signature-status]")).to_have_text("Signature captured")
    page.get_by_role("button", name="Clear signature").click()
    expect(page.locator("[data-signature-status]")).to_have_text("")
    assert page.locator("[data-signature-input]").input_value() == ""
    draw_signature(page)
    expect(page.locator("[data-signature-status]")).to_have_text("Signature captured")
    if width == "desktop":
        audit(page, "admin-shipment-proof-form")

    page.get_by_label("Location").fill("Kochi")
    received_by.fill(RECEIVER)
    page.get_by_role("button", name="Record update").click()
    expect(page.get_by_text("Status updated: Delivered at Kochi.")).to_be_visible()

    proof = stored_proof(app)
    assert proof.received_by == RECEIVER and proof.photo_key is None
    signature = (storage_dir / proof.signature_key).read_bytes()
    assert inked_pixels(signature) > 200  # the strokes, not an empty canvas

    panel = page.get_by_role("region", name="Proof of delivery")
    expect(panel).to_contain_text(RECEIVER)
    image = panel.get_by_role("img", name=f"Signature of {RECEIVER}")
    expect(image).to_be_visible()
    page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=image.element_handle())
    assert page_overflow(page) is None
    if width == "desktop":
        audit(page, "admin-shipment-delivered")

    public = open_tab().page
    public.set_viewport_size(WIDTHS[width])
    public.goto(f"/track/{at_the_door}")
    expect(public.locator("[data-delivered-to]")).to_have_text(re.compile(r"^Delivered to Ravi at .+"))
    body = public.locator("body").inner_html()
    assert "Kumar" not in body and "/proofs/" not in body
    assert page_overflow(public) is None


def test_without_javascript_the_server_says_what_a_delivery_needs(open_tab, at_the_door, app):
    page = open_tab(javascript=False).page
    sign_in(page, "courier1")
    page.goto(f"/admin/shipments/{at_the_door}")
    expect(page.get_by_label("Received by")).to_be_visible()
    expect(page.get_by_label("Why could it not be delivered?")).to_be_visible()
    expect(page.locator("[data-signature-pad]")).to_be_hidden()  # drawing needs JavaScript

    page.get_by_label("New status").select_option("Delivered")
    page.get_by_label("Location").fill("Kochi")
    page.get_by_role("button", name="Record update").click()
    expect(page.locator("#received_by-error")).to_contain_text("Enter the name of the person who received")
    expect(page.get_by_role("alert")).to_contain_text("There is a problem")

    page.get_by_label("Received by").fill(RECEIVER)
    page.get_by_role("button", name="Record update").click()
    expect(page.get_by_text("Status updated: Delivered at Kochi.")).to_be_visible()
    assert stored_proof(app).received_by == RECEIVER
