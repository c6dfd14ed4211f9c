"""The SLA lists on fixed clocks: at risk, breached, neither; the return leg and delivered parcels left out."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from app.domain.status import Status
from app.domain.timeutil import as_utc
from app.extensions import db
from app.models import Shipment
from app.services.operations.sla import sla_lists
from app.services.shipments.status_changes import record_status_change

HTML = {"Accept": "text/html"}
NEW_YEAR = datetime(2026, 1, 1, 18, 29, 59, tzinfo=UTC)  # the end of 1 Jan 2026 in India


def last_change(app, tracking_id: str) -> datetime:
    """The parcel's last change: what its estimate counts from."""
    with app.app_context():
        return as_utc(db.session.scalar(select(Shipment.updated_at).where(Shipment.tracking_id == tracking_id)))


def promise(app, tracking_id: str, promised_by: datetime) -> None:
    with app.app_context():
        db.session.execute(update(Shipment).where(Shipment.tracking_id == tracking_id)
                           .values(promised_by=promised_by))
        db.session.commit()


def move(app, tracking_id: str, *statuses: str) -> None:
    with app.app_context():
        for status in statuses:
            record_status_change(tracking_id, status, "Kochi Hub", None, "operator1",
                                 received_by="Vikram" if status == Status.DELIVERED else None,
                                 attempt_reason="nobody_home" if status == Status.DELIVERY_ATTEMPTED else None)
        db.session.commit()


def lists_at(app, now: datetime) -> tuple[list[str], list[str]]:
    with app.app_context():
        lists = sla_lists(now)
        return [p.tracking_id for p in lists.at_risk], [p.tracking_id for p in lists.breached]


@pytest.fixture
def parcels(app, create_shipment):
    """Booked parcels, each with a promise relative to its last change `since`: tight (1 day: a Booked parcel's
    default estimate runs to 120 hours), roomy (30 days)."""
    tight, roomy = create_shipment(), create_shipment(mobile="098765 43211")
    since = last_change(app, tight)
    promise(app, tight, since + timedelta(days=1))
    promise(app, roomy, last_change(app, roomy) + timedelta(days=30))
    return tight, roomy, since


def test_at_risk_when_the_latest_estimate_runs_past_the_promise(app, parcels):
    tight, roomy, since = parcels
    assert lists_at(app, since + timedelta(hours=1)) == ([tight], [])


def test_breached_once_the_promised_day_has_passed_and_nothing_is_at_risk_of_it(app, parcels):
    tight, roomy, since = parcels
    assert lists_at(app, since + timedelta(days=1)) == ([tight], [])  # the last second still counts
    at_risk, breached = lists_at(app, since + timedelta(days=1, seconds=1))
    assert breached == [tight] and tight not in at_risk


def test_an_overdue_estimate_is_seen_from_the_clock_given(app, parcels):
    """Past its window the estimate starts again at `now`: the roomy parcel turns at risk only when the window
    moved from the given clock runs past its promise, not the machine's clock."""
    tight, roomy, since = parcels
    assert roomy not in lists_at(app, since + timedelta(days=20))[0]
    assert roomy in lists_at(app, since + timedelta(days=28))[0]


def test_delivered_and_return_leg_parcels_are_in_neither_list(app, create_shipment):
    delivered, returning, held_back = (create_shipment(mobile=m) for m in ("9876543210", "9876543211", "9876543212"))
    move(app, delivered, Status.PICKED_UP, Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY, Status.DELIVERED)
    to_rto = (Status.PICKED_UP, Status.IN_TRANSIT, Status.OUT_FOR_DELIVERY, Status.DELIVERY_ATTEMPTED,
              Status.RTO_INITIATED)
    move(app, returning, *to_rto)
    move(app, held_back, *to_rto, Status.ON_HOLD)
    for tracking_id in (delivered, returning, held_back):
        promise(app, tracking_id, NEW_YEAR)
    assert lists_at(app, last_change(app, held_back) + timedelta(days=400)) == ([], [])


def test_parcels_without_a_promise_are_left_out(app, create_shipment):
    tracking_id = create_shipment()
    with app.app_context():
        db.session.execute(update(Shipment).where(Shipment.tracking_id == tracking_id).values(promised_by=None))
        db.session.commit()
    assert lists_at(app, datetime.now().astimezone() + timedelta(days=400)) == ([], [])


def test_the_sla_json_and_page(app, client, auth, create_shipment):
    overdue = create_shipment()
    promise(app, overdue, NEW_YEAR)
    auth.login("viewer1", role="viewer")
    body = client.get("/admin/sla").get_json()
    assert set(body) == {"at_risk", "breached"} and body["at_risk"] == []
    assert body["breached"] == [{"tracking_id": overdue, "status": "Booked",
                                 "promised_by": "2026-01-01T18:29:59Z", "estimated_latest": None}]
    page = client.get("/admin/sla", headers=HTML)
    assert page.status_code == 200 and f'data-tracking-id="{overdue}"' in page.get_data(as_text=True)


def test_the_sla_lists_need_staff(client, auth):
    assert client.get("/admin/sla").status_code == 401
    auth.login("courier1", role="courier")
    assert client.get("/admin/sla").status_code == 403
