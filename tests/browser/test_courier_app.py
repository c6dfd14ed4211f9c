"""The courier app in headless Chromium: installed (its service worker), opened again offline, a delivery with a
signature and photo and two attempts recorded without a connection, and each applied exactly once, at the time it
happened, when the connection returns. Refused actions stay with their reason; the barcode reader works under the
page's policy; axe finds nothing at 360 px."""
from __future__ import annotations

import base64
import io
import time
from datetime import datetime
from decimal import Decimal

import pytest
from PIL import Image
from playwright.sync_api import expect
from reportlab.graphics import renderSVG
from reportlab.graphics.barcode import createBarcodeDrawing
from sqlalchemy import func, select

from app.domain.timeutil import as_utc, utcnow
from app.extensions import db
from app.models import CodCollection, CourierEventReceipt, CourierPosition, DeliveryProof, Shipment, TrackingEvent
from app.services.field.settings import set_settings
from tests.browser.conftest import WIDTHS, audit, axe_violations, format_violations
from tests.browser.test_portals import sign_in
from tests.browser.test_proof_of_delivery import app, draw_signature, inked_pixels, storage_dir  # noqa: F401 - fixtures
from tests.field_support import sent_code
from tests.location_support import OUT_FOR_DELIVERY, make_courier, move_to, run_sheet, shift_around

pytestmark = pytest.mark.browser

COURIER = "ravi"
KOCHI = {"latitude": 9.9312, "longitude": 76.2673, "accuracy": 8}


@pytest.fixture
def day(app, create_shipment):  # noqa: F811
    """Three parcels Out for Delivery on the courier's run sheet for today, the courier on shift: their IDs."""
    courier_id = make_courier(app, COURIER, shift=shift_around(utcnow(), inside=True))
    tracking_ids = [create_shipment(receiver_name=f"Receiver {n}") for n in range(1, 4)]
    for tracking_id in tracking_ids:
        move_to(app, tracking_id, *OUT_FOR_DELIVERY)
    run_sheet(app, courier_id, [(tracking_id, "open") for tracking_id in tracking_ids])
    return tracking_ids


def open_app(tab, stops: int = 3):
    """Sign in as the courier, open the app, and wait until the service worker controls it."""
    page = tab.page
    sign_in(page, COURIER)
    page.goto("/courier/")
    expect(page.locator("[data-stop]")).to_have_count(stops)
    page.evaluate("""async () => {
        await navigator.serviceWorker.ready;
        if (!navigator.serviceWorker.controller) {
            await new Promise(resolve => navigator.serviceWorker.addEventListener("controllerchange", resolve));
        }
    }""")
    return page


def stop(page, tracking_id: str):
    return page.locator(f"#stop-{tracking_id}")


def queued(page) -> dict[str, dict]:
    """The actions kept on the phone (IndexedDB), by tracking ID."""
    actions = page.evaluate(f"async () => await window.WaybillCourierStore.actions({COURIER!r})")
    return {action["tracking_id"]: action for action in actions}


def parsed(iso: str) -> datetime:
    return as_utc(datetime.fromisoformat(iso.replace("Z", "+00:00")))


def a_phone_photo() -> bytes:
    """A JPEG as big as a phone camera's (3000 x 2000)."""
    out = io.BytesIO()
    Image.new("RGB", (3000, 2000), (180, 120, 60)).save(out, "JPEG", quality=90)
    return out.getvalue()


def attempt(page, tracking_id: str, reason: str) -> None:
    stop(page, tracking_id).get_by_role("button", name=f"Not delivered: {tracking_id}").click()
    page.get_by_label(reason).check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-sheet]")).to_be_hidden()


def test_offline_actions_are_kept_and_applied_once_with_their_own_time(open_tab, day, app, storage_dir):  # noqa: F811
    delivered, attempted, closed = day
    tab = open_tab()
    tab.context.grant_permissions(["geolocation"], origin=tab.base_url)
    tab.context.set_geolocation(KOCHI)
    page = open_app(tab)
    page.set_viewport_size(WIDTHS["phone"])
    expect(page.locator("[data-location-state]")).to_have_text("Sharing your location.")

    # No connection: the page, its files and the stops come from the phone.
    tab.context.set_offline(True)
    page.reload()
    expect(page.locator("[data-stop]")).to_have_count(3)
    expect(page.locator("[data-stops-state]")).to_contain_text("Offline: the stops as this phone last saw them")
    expect(page.locator("[data-net]")).to_contain_text("Offline")

    # Delivered, with the receiver's name, a signature and a photo.
    stop(page, delivered).get_by_role("button", name=f"Delivered: {delivered}", exact=True).click()
    page.get_by_label("Received by").fill("Vikram")
    draw_signature(page)
    expect(page.locator("[data-signature-status]")).to_have_text("Signature captured")
    page.get_by_label("Photo of the parcel").set_input_files(
        files=[{"name": "door.jpg", "mimeType": "image/jpeg", "buffer": a_phone_photo()}])
    expect(page.locator("[data-photo-preview]")).to_be_visible()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-sheet]")).to_be_hidden()
    # Two attempts, on the other stops.
    attempt(page, attempted, "Nobody home")
    attempt(page, closed, "Business closed")

    for tracking_id, status in ((delivered, "Delivered"), (attempted, "Delivery Attempted"),
                                (closed, "Delivery Attempted")):
        expect(stop(page, tracking_id).locator(".queued--waiting")).to_contain_text("waiting to send")
        expect(stop(page, tracking_id).locator("[data-stop-status]")).to_have_text(status)
    expect(page.locator("[data-queue-summary]")).to_have_text("3 actions waiting to send.")
    kept = queued(page)
    assert {tracking_id: action["status"] for tracking_id, action in kept.items()} == {
        delivered: "Delivered", attempted: "Delivery Attempted", closed: "Delivery Attempted"}
    photo = base64.b64decode(kept[delivered]["photo"].split(",", 1)[1])
    with Image.open(io.BytesIO(photo)) as image:  # made smaller on the phone before it travels
        assert (image.format, image.size) == ("JPEG", (1280, 853))

    time.sleep(3)  # the actions' own times and the moment they reach the server are visibly apart
    with app.app_context():
        assert set(db.session.scalars(select(Shipment.status))) == {"Out for Delivery"}
    tab.context.set_offline(False)
    expect(page.locator("[data-queue-summary]")).to_have_text("Nothing waiting to send.", timeout=20_000)
    expect(page.locator(".queued")).to_have_count(0)
    expect(page.locator("[data-net]")).to_have_text("Online")
    sent_by = utcnow()

    with app.app_context():
        for tracking_id, action in kept.items():
            shipment = db.session.scalars(select(Shipment).where(Shipment.tracking_id == tracking_id)).one()
            events = db.session.scalars(select(TrackingEvent).where(TrackingEvent.shipment_id == shipment.id,
                                                                    TrackingEvent.status == action["status"])).all()
            assert len(events) == 1, tracking_id  # exactly once
            assert shipment.status == action["status"]
            happened = parsed(action["at"])
            # The time it happened on the phone (to the millisecond it was kept with), not when it arrived.
            assert abs((as_utc(events[0].occurred_at) - happened).total_seconds()) < 0.001, tracking_id
            assert (sent_by - happened).total_seconds() > 3
            receipt = db.session.scalars(select(CourierEventReceipt)
                                         .where(CourierEventReceipt.client_id == action["id"])).one()
            assert (receipt.outcome, receipt.event_id) == ("applied", events[0].id)
        proofs = {proof.attempt_reason or proof.received_by: proof
                  for proof in db.session.scalars(select(DeliveryProof))}
        assert set(proofs) == {"Vikram", "nobody_home", "business_closed"}
        signature = (storage_dir / proofs["Vikram"].signature_key).read_bytes()
        assert inked_pixels(signature) > 200
        assert (storage_dir / proofs["Vikram"].photo_key).exists()
        # The position measured while the app was open went out too.
        assert db.session.scalar(select(func.count()).select_from(CourierPosition)) >= 1

    # The same actions sent again (a replay after a lost answer) apply nothing twice.
    results = page.evaluate("""async (events) => {
        const setup = JSON.parse(document.querySelector("[data-courier-app]").getAttribute("data-setup"));
        const response = await fetch("/courier/events", {method: "POST", headers: {
            "Content-Type": "application/json", "X-CSRFToken": setup.csrf_token}, body: JSON.stringify({events})});
        return (await response.json()).results;
    }""", [{key: value for key, value in action.items() if key not in ("courier", "kind", "state")}
           for action in kept.values()])
    assert {result["outcome"] for result in results} == {"duplicate"}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(TrackingEvent)
                                 .where(TrackingEvent.status.in_(["Delivered", "Delivery Attempted"]))) == 3
    expect(stop(page, delivered)).to_have_class("stop stop--done")


def test_a_refused_action_stays_with_its_reason_until_dismissed(open_tab, day, app):  # noqa: F811
    delivered, moved_away, _ = day
    tab = open_tab()
    page = open_app(tab)
    tab.context.set_offline(True)
    # Delivered without a signature or photo: the courier is asked, and goes on.
    stop(page, delivered).get_by_role("button", name=f"Delivered: {delivered}", exact=True).click()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-sheet-problems]")).to_have_text(
        "Enter the name of the person who took the parcel.")  # required: no way round it
    page.get_by_label("Received by").fill("Vikram")
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-sheet-problems]")).to_contain_text("Continue without a signature?")
    expect(page.locator("[data-sheet-problems]")).to_contain_text("Continue without a photo?")
    page.get_by_role("button", name="Continue without").click()
    expect(page.locator("[data-sheet]")).to_be_hidden()
    # Meanwhile the hub takes the other parcel back: the courier's attempt is no longer theirs to record.
    move_to(app, moved_away, "On Hold")
    attempt(page, moved_away, "Nobody home")

    tab.context.set_offline(False)
    refused = stop(page, moved_away).locator(".queued--refused")
    expect(refused).to_contain_text("was not recorded: This parcel is not on your run sheet.", timeout=20_000)
    expect(page.locator("[data-queue-summary]")).to_have_text("Nothing waiting to send.")
    expect(stop(page, delivered).locator("[data-stop-status]")).to_have_text("Delivered")
    assert list(queued(page)) == [moved_away]  # kept on the phone until the courier has seen it
    refused.get_by_role("button", name="Dismiss").click()
    expect(refused).to_have_count(0)
    assert queued(page) == {}


def test_cash_by_upi_the_delivery_code_and_a_pickup(open_tab, app, create_shipment):  # noqa: F811
    courier_id = make_courier(app, COURIER, shift=shift_around(utcnow(), inside=True))
    with app.app_context():  # no signature or photo asked for; the recipient gets a code at Out for Delivery
        set_settings({"signature": "off", "photo": "off", "delivery_otp": "on"}, actor="admin1")
        db.session.commit()
    cod = create_shipment(payment="cod", cod_amount="1250.50")
    move_to(app, cod, *OUT_FOR_DELIVERY)
    pickup = create_shipment(pickup=True, sender_address="4 Beach Road, Kochi", sender_pincode="682001",
                             sender_mobile="+91 98470 12345")
    run_sheet(app, courier_id, [(cod, "open"), (pickup, "open")])
    page = open_app(open_tab(), stops=2)

    expect(stop(page, pickup).locator("[data-stop-kind]")).to_have_text("Pickup from the sender")
    expect(stop(page, pickup).locator("[data-stop-address]")).to_have_text("4 Beach Road, Kochi, 682001")
    expect(stop(page, pickup).locator("[data-stop-call]")).to_have_attribute("href", "tel:+919847012345")
    expect(stop(page, pickup).locator("[data-stop-navigate]")).to_have_attribute(
        "href", "geo:0,0?q=4%20Beach%20Road%2C%20Kochi%2C%20682001")
    expect(stop(page, pickup).locator("[data-action]:visible")).to_have_text(["Picked up"])
    expect(stop(page, cod).locator("[data-stop-money]")).to_have_text("Collect ₹1,250.50 (cash on delivery).")

    stop(page, cod).get_by_role("button", name=f"Delivered: {cod}", exact=True).click()
    expect(page.get_by_label("Amount collected (₹)")).to_have_value("1250.50")
    expect(page.locator("[data-proof=signature]")).to_be_hidden()
    page.get_by_label("Received by").fill("Vikram")
    page.get_by_role("radio", name="UPI").check()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-sheet-problems] li")).to_have_text(
        ["Enter the UPI reference.", "Enter the 4-digit delivery code."])
    page.get_by_label("UPI reference").fill("UPI-4471")
    page.get_by_label("Delivery code").fill(sent_code(app, cod))
    page.get_by_role("button", name="Save").click()
    expect(stop(page, cod).locator("[data-stop-status]")).to_have_text("Delivered")

    stop(page, pickup).get_by_role("button", name=f"Picked up: {pickup}").click()
    expect(page.get_by_text("Confirm that you have the parcel from the sender.")).to_be_visible()
    page.get_by_role("button", name="Save").click()
    expect(page.locator("[data-queue-summary]")).to_have_text("Nothing waiting to send.")
    expect(stop(page, pickup).locator("[data-stop-status]")).to_have_text("Picked Up")
    with app.app_context():
        statuses = dict(db.session.execute(select(Shipment.tracking_id, Shipment.status)).all())
        assert statuses == {cod: "Delivered", pickup: "Picked Up"}
        cash = db.session.scalars(select(CodCollection)).one()
        assert (cash.collected, cash.method, cash.upi_reference) == (Decimal("1250.50"), "upi", "UPI-4471")


def test_scan_or_type_a_tracking_id_to_find_the_stop(open_tab, day):
    page = open_app(open_tab())
    page.get_by_label("Scan or type a tracking ID").fill(f" {day[1].lower()} ")
    page.get_by_role("button", name="Find").click()
    expect(page.locator("[data-find-answer]")).to_have_text(f"Stop 2: {day[1]}.")
    expect(stop(page, day[1])).to_be_focused()
    # A label's QR code holds the tracking page's URL.
    page.get_by_label("Scan or type a tracking ID").fill(f"http://waybill.test/track/{day[2]}")
    page.get_by_label("Scan or type a tracking ID").press("Enter")
    expect(page.locator("[data-find-answer]")).to_have_text(f"Stop 3: {day[2]}.")
    page.get_by_label("Scan or type a tracking ID").fill("FFFFFFFF")
    page.get_by_role("button", name="Find").click()
    expect(page.locator("[data-find-answer]")).to_have_text("FFFFFFFF is not on your run sheet today.")


def svg_data_url(drawing) -> str:
    return "data:image/svg+xml;base64," + base64.b64encode(renderSVG.drawToString(drawing).encode()).decode()


def test_the_vendored_reader_reads_code_128_and_qr_under_the_pages_policy(open_tab, day):
    """Headless Chromium on Linux has no BarcodeDetector: the camera reader falls back to the vendored one
    (zxing-wasm), which compiles under the page's Content-Security-Policy and reads the labels' two codes."""
    tab = open_tab()
    page = open_app(tab)
    codes = {
        "code_128": svg_data_url(createBarcodeDrawing("Code128", value=day[0], barHeight=80, barWidth=2,
                                                      humanReadable=False, quiet=True)),
        "qr_code": svg_data_url(createBarcodeDrawing("QR", value=f"http://waybill.test/track/{day[0]}",
                                                     width=240, height=240)),
    }
    read = page.evaluate("""async (codes) => {
        const setup = JSON.parse(document.querySelector("[data-courier-app]").getAttribute("data-setup"));
        const detector = await window.WaybillCameraReader.detector(
            {script: setup.urls.barcode_reader, wasm: setup.urls.barcode_wasm});
        const found = {};
        for (const [format, url] of Object.entries(codes)) {
            const image = new Image();
            image.src = url;
            await image.decode();
            const canvas = document.createElement("canvas");
            canvas.width = image.naturalWidth + 40;
            canvas.height = image.naturalHeight + 40;
            const context = canvas.getContext("2d");
            context.fillStyle = "#ffffff";
            context.fillRect(0, 0, canvas.width, canvas.height);
            context.drawImage(image, 20, 20);
            found[format] = (await detector.detect(canvas)).map(code => [code.format, code.rawValue]);
        }
        return {found, native: "BarcodeDetector" in window};
    }""", codes)
    assert read["found"] == {"code_128": [["code_128", day[0]]],
                             "qr_code": [["qr_code", f"http://waybill.test/track/{day[0]}"]]}, read


def test_the_app_passes_axe_at_360_px_with_the_action_sheet_open(open_tab, day):
    page = open_app(open_tab())
    audit(page, "courier-app")  # desktop and 360 px: no sideways scroll, no axe violation
    page.set_viewport_size(WIDTHS["phone"])
    stop(page, day[0]).get_by_role("button", name=f"Delivered: {day[0]}", exact=True).click()
    expect(page.get_by_label("Received by")).to_be_visible()
    violations = axe_violations(page)
    assert not violations, format_violations(violations)
    page.keyboard.press("Escape")
    expect(page.locator("[data-sheet]")).to_be_hidden()
    expect(stop(page, day[0]).get_by_role("button", name=f"Delivered: {day[0]}", exact=True)).to_be_focused()
