"""The live map (/admin/live) in headless Chromium: a courier's marker appears, glides to a new position when the
courier app posts one, turns from green to grey when the courier falls silent, and the table below the map says
the same; the page's Content-Security-Policy is never broken (the Tab fixture fails on any violation)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from playwright.sync_api import expect

from app.domain.timeutil import isoformat_z, utcnow
from tests.browser.conftest import audit
from tests.location_support import OUT_FOR_DELIVERY, make_courier, move_to, run_sheet
from tests.location_support import sign_in as courier_sign_in

pytestmark = pytest.mark.browser

PASSWORD = "correct-horse-1"
SILENT_SECONDS = 4


def sign_in(page, username: str) -> None:
    page.goto("/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def post_position(client, headers, lat: float, lon: float, ahead: float = 0.0) -> None:
    """A fix `ahead` seconds in the phone's future (the app keeps one fix per 5 s: a second one so soon would be
    dropped; a phone's clock may run up to 5 minutes ahead)."""
    response = client.post("/courier/locations", headers=headers, json={"points": [
        {"lat": lat, "lon": lon, "accuracy": 5, "at": isoformat_z(utcnow() + timedelta(seconds=ahead))}]})
    assert response.status_code == 202 and response.get_json()["accepted"] == 1, response.get_json()


def test_a_courier_moves_and_turns_grey_on_the_live_map(app, open_tab, make_user, create_shipment):
    app.config.update(COURIER_SILENT_AFTER=timedelta(seconds=SILENT_SECONDS), SSE_HEARTBEAT_SECONDS=0.5)
    courier_id = make_courier(app, "ravi", name="Ravi Kumar")
    parcel = create_shipment()
    move_to(app, parcel, *OUT_FOR_DELIVERY)
    run_sheet(app, courier_id, [(parcel, "open")])
    make_user("viewer1", role="viewer")
    phone = app.test_client()
    headers = courier_sign_in(phone, "ravi")
    post_position(phone, headers, 12.9716, 77.5946)

    tab = open_tab()
    page = tab.page
    sign_in(page, "viewer1")
    page.goto("/admin/live")
    marker = page.locator("path.courier-marker[data-username='ravi']")
    expect(marker).to_have_attribute("data-state", "active")
    row = page.locator("#live-couriers tr[data-username='ravi']")
    expect(row).to_have_attribute("data-state", "active")
    expect(row.locator("[data-cell=position]")).to_have_text("12.97160, 77.59460")
    expect(page.locator("#live-figures")).to_have_attribute("data-live-mode", "stream")
    before = marker.bounding_box()

    post_position(phone, headers, 12.9816, 77.6046, ahead=6)  # about 1.5 km north-east
    expect(marker).to_have_attribute("data-lat", "12.9816")
    expect(row.locator("[data-cell=position]")).to_have_text("12.98160, 77.60460")
    after = marker.bounding_box()
    assert after["x"] > before["x"] and after["y"] < before["y"]  # east is right, north is up

    # Silent for COURIER_SILENT_AFTER: offline, grey, on the map and in the table, with no new request.
    expect(marker).to_have_attribute("data-state", "offline", timeout=(SILENT_SECONDS + 12) * 1000)
    expect(row).to_have_attribute("data-state", "offline")
    assert marker.evaluate("(el) => getComputedStyle(el).fill") == "rgb(107, 114, 128)"
    expect(row.locator("[data-cell=state]")).to_have_text("Offline")

    row.get_by_role("button", name="Ravi Kumar").click()
    expect(page.locator("[data-courier-stops] li")).to_have_count(1)
    expect(page.locator("[data-courier-stops] li").first).to_contain_text(parcel)
    audit(page, "live-map")


@pytest.mark.parametrize("stream_served", [True, False])
def test_the_tracking_page_follows_the_stream_and_polls_when_it_fails(app, open_tab, create_shipment, stream_served):
    """With the stream, a change shows at once although the page would poll only every minute; without it (this
    process refuses streams: 503) the page polls as before."""
    app.config.update(TRACK_REFRESH_SECONDS=60 if stream_served else 1, SSE_MAX_STREAMS=1000 if stream_served else 0)
    tracking_id = create_shipment()
    page = open_tab().page
    page.goto(f"/track/{tracking_id}")
    region = page.locator("[data-live-url]")
    expect(region).to_have_attribute("data-live-mode", "stream" if stream_served else "poll")
    move_to(app, tracking_id, "Picked Up")
    expect(region.locator("[data-status]")).to_have_attribute("data-status", "Picked Up", timeout=3000)
