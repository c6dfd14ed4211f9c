"""The courier on the public tracking answer: shown for a parcel Out for Delivery on a run sheet, with their first
name and the stops before it, and where they are only when close and recently seen; never for another status,
never their username; on the page as words; and kept out of the cached tracking document."""
from __future__ import annotations

from datetime import timedelta

import pytest

from app import create_app
from app.domain.timeutil import isoformat_z, utcnow
from app.extensions import db
from app.services.field.public_courier import public_first_name
from app.services.shipments.tracking_cache import stop_tracking_cache
from tests.location_support import (
    OUT_FOR_DELIVERY,
    TIMEZONE,
    close_stop,
    make_courier,
    move_to,
    run_sheet,
    set_profile,
)

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html"}


@pytest.fixture(autouse=True)
def local_time(app):
    app.config["DISPLAY_TIMEZONE"] = TIMEZONE


def seen(minutes_ago: float = 1, lat: float = 12.97194, lon: float = 77.59461) -> dict:
    return {"last_lat": lat, "last_lon": lon, "last_accuracy": 7.0,
            "last_seen_at": utcnow() - timedelta(minutes=minutes_ago)}


@pytest.fixture
def round_trip(app, create_shipment):
    """Courier "ravi.k" (named "ravi kumar", seen a minute ago) with five parcels Out for Delivery, all open
    stops of today's run sheet in order: (courier id, tracking IDs)."""
    courier_id = make_courier(app, "ravi.k", name="ravi kumar", **seen())
    ids = [create_shipment() for _ in range(5)]
    for tracking_id in ids:
        move_to(app, tracking_id, *OUT_FOR_DELIVERY)
    run_sheet(app, courier_id, [(tracking_id, "open") for tracking_id in ids])
    return courier_id, ids


def tracked(client, tracking_id: str) -> dict:
    response = client.get(f"/track/{tracking_id}", headers=JSON)
    assert response.status_code == 200
    return response.get_json()


def courier_of(client, tracking_id: str) -> dict | None:
    return tracked(client, tracking_id).get("courier")


# --- what it says -------------------------------------------------------------------------------------------------

def test_the_courier_is_named_with_the_stops_before_this_one(client, round_trip):
    _, ids = round_trip
    assert courier_of(client, ids[4]) == {"name": "Ravi", "stops_before_you": 4}  # too far off to be shown
    assert courier_of(client, ids[1])["stops_before_you"] == 1
    assert courier_of(client, ids[0])["stops_before_you"] == 0


def test_the_position_shows_once_at_most_3_stops_remain_before_this_one(app, client, round_trip):
    _, ids = round_trip
    assert "position" not in courier_of(client, ids[4])
    close_stop(app, ids[0])  # delivered: no longer before anyone
    courier = courier_of(client, ids[4])
    assert courier["stops_before_you"] == 3
    assert courier["position"] == {"lat": 12.972, "lon": 77.595}
    app.config["COURIER_SHOW_WITHIN_STOPS"] = 2
    assert "position" not in courier_of(client, ids[4])
    assert courier_of(client, ids[2])["position"] == {"lat": 12.972, "lon": 77.595}


def test_stops_after_this_one_or_closed_or_moved_do_not_count(app, client, create_shipment):
    courier_id = make_courier(app, "ravi", **seen())
    ids = [create_shipment() for _ in range(5)]
    for tracking_id in ids:
        move_to(app, tracking_id, *OUT_FOR_DELIVERY)
    run_sheet(app, courier_id, [(ids[0], "done"), (ids[1], "moved"), (ids[2], "open"), (ids[3], "open"),
                                (ids[4], "open")])
    assert courier_of(client, ids[3])["stops_before_you"] == 1


def test_the_position_is_rounded_to_3_decimals_and_says_when_it_was_taken(app, client, round_trip):
    courier_id, ids = round_trip
    when = utcnow().replace(microsecond=0) - timedelta(minutes=2)
    set_profile(app, courier_id, last_lat=-33.86882, last_lon=151.20929, last_seen_at=when)
    courier = courier_of(client, ids[0])
    assert courier == {"name": "Ravi", "stops_before_you": 0, "position": {"lat": -33.869, "lon": 151.209},
                       "updated_at": isoformat_z(when)}


@pytest.mark.parametrize(("minutes_ago", "shown"), [(14.5, True), (15, False), (60, False)])
def test_the_position_shows_only_while_the_fix_is_under_15_minutes_old(app, client, round_trip, minutes_ago,
                                                                      shown):
    courier_id, ids = round_trip
    set_profile(app, courier_id, **seen(minutes_ago))
    courier = courier_of(client, ids[0])
    assert ("position" in courier, "updated_at" in courier) == (shown, shown)
    assert courier["stops_before_you"] == 0  # the rest of the block stays


def test_a_courier_never_seen_has_no_position(app, client, round_trip):
    courier_id, ids = round_trip
    set_profile(app, courier_id, last_lat=None, last_lon=None, last_seen_at=None)
    assert courier_of(client, ids[0]) == {"name": "Ravi", "stops_before_you": 0}


# --- when it is not there -----------------------------------------------------------------------------------------

def test_never_for_another_status(app, client, create_shipment):
    courier_id = make_courier(app, "ravi", **seen())
    in_transit, delivered, attempted = create_shipment(), create_shipment(), create_shipment()
    move_to(app, in_transit, "Picked Up", "In Transit")
    for tracking_id in (delivered, attempted):
        move_to(app, tracking_id, *OUT_FOR_DELIVERY)
    run_sheet(app, courier_id, [(in_transit, "open"), (delivered, "open"), (attempted, "open")])
    assert {tid: "courier" in tracked(client, tid) for tid in (in_transit, delivered, attempted)} == {
        in_transit: False, delivered: True, attempted: True}
    move_to(app, delivered, "Delivered")
    move_to(app, attempted, "Delivery Attempted")
    assert "courier" not in tracked(client, delivered)
    assert "courier" not in tracked(client, attempted)


def test_out_for_delivery_without_a_run_sheet_has_no_courier(app, client, create_shipment):
    make_courier(app, "ravi", **seen())
    tracking_id = create_shipment()
    move_to(app, tracking_id, *OUT_FOR_DELIVERY)
    assert "courier" not in tracked(client, tracking_id)


# --- what it never says -------------------------------------------------------------------------------------------

def test_the_public_answer_holds_no_username_and_no_full_name(client, round_trip):
    _, ids = round_trip
    close_stop_free = tracked(client, ids[0])
    text = str(close_stop_free)
    assert close_stop_free["courier"]["name"] == "Ravi"
    assert "ravi.k" not in text and "kumar" not in text.lower() and "77.59461" not in text


@pytest.mark.parametrize(("name", "username", "shown"), [
    ("ravi kumar", "rk7", "Ravi"), ("  Ravi  ", "rk7", "Ravi"), ("DeShawn Lee", "dl", "DeShawn"),
    (None, "ravi.k", "Ravi"), ("", "sita_2", "Sita"), (None, "42", None), ("अमित शर्मा", "amit", "अमित"),
])
def test_the_first_name_is_the_names_first_word_else_the_usernames(name, username, shown):
    assert public_first_name(name, username) == shown


def test_without_a_profile_the_username_gives_the_name(app, client, create_shipment):
    courier_id = make_courier(app, "meena.s", profile=False)
    tracking_id = create_shipment()
    move_to(app, tracking_id, *OUT_FOR_DELIVERY)
    run_sheet(app, courier_id, [(tracking_id, "open")])
    assert courier_of(client, tracking_id) == {"name": "Meena", "stops_before_you": 0}


# --- the page -----------------------------------------------------------------------------------------------------

def page(client, tracking_id: str, **query) -> str:
    response = client.get(f"/track/{tracking_id}", headers=HTML, query_string=query)
    assert response.status_code == 200
    return response.get_data(as_text=True)


def test_the_page_says_how_many_stops_before_and_where_the_courier_was(app, client, round_trip):
    courier_id, ids = round_trip
    set_profile(app, courier_id, **seen(3.5, lat=12.97201, lon=77.59489))
    for html in (page(client, ids[2]), page(client, ids[2], fragment="timeline")):
        assert "Your courier Ravi has 2 stops before yours." in html
        assert "Last seen 3 min ago near 12.972, 77.595" in html
        assert "ravi.k" not in html
    assert "Your courier Ravi has 1 stop before yours." in page(client, ids[1])
    assert "Your courier Ravi is coming to you next." in page(client, ids[0])
    far = page(client, ids[4])
    assert "4 stops before yours" in far and "Last seen" not in far


def test_the_page_says_just_now_for_a_fresh_fix_and_nothing_for_another_status(app, client, round_trip):
    _, ids = round_trip
    set_profile(app, round_trip[0], **seen(0.2))
    assert "Last seen just now near 12.972, 77.595" in page(client, ids[0])
    move_to(app, ids[0], "Delivered")
    assert "Your courier" not in page(client, ids[0])


# --- caching ------------------------------------------------------------------------------------------------------

def test_the_etag_changes_when_the_courier_moves_and_not_otherwise(app, client, round_trip):
    courier_id, ids = round_trip
    set_profile(app, courier_id, **seen(0.2))
    first = client.get(f"/track/{ids[0]}", headers=JSON)
    again = client.get(f"/track/{ids[0]}", headers={**JSON, "If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304
    set_profile(app, courier_id, **seen(0.1, lat=12.98))
    moved = client.get(f"/track/{ids[0]}", headers={**JSON, "If-None-Match": first.headers["ETag"]})
    assert moved.status_code == 200 and moved.get_json()["courier"]["position"]["lat"] == 12.98


@pytest.fixture
def cached_app(make_config, database_url):
    """An app whose tracking cache is on (PostgreSQL only: it needs LISTEN/NOTIFY)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the tracking cache needs PostgreSQL LISTEN/NOTIFY; on SQLite it stays off")
    application = create_app(make_config(TRACK_CACHE_ENABLED=True, DISPLAY_TIMEZONE=TIMEZONE))
    assert application.extensions["waybill_tracking_listener"].connected.wait(10), "listener did not connect"
    yield application
    stop_tracking_cache(application)
    with application.app_context():
        db.engine.dispose()


def test_the_courier_is_added_to_the_cached_document_per_request(cached_app, app, round_trip):
    courier_id, ids = round_trip
    reader = cached_app.test_client()
    close_stop(app, ids[0])
    assert courier_of(reader, ids[4])["stops_before_you"] == 3
    cache = cached_app.extensions["waybill_tracking_cache"]
    cached = cache.get(ids[4])
    assert cached is not None and b"courier" not in cached.body  # the cache holds the document without it
    close_stop(app, ids[1])  # no status change of this parcel: its cached document stays...
    set_profile(app, courier_id, **seen(0.5, lat=12.5))
    courier = courier_of(reader, ids[4])  # ...and the block is read afresh
    assert (courier["stops_before_you"], courier["position"]["lat"]) == (2, 12.5)
    assert cache.get(ids[4]) is cached
