"""Bulk demo seeding (COPY on PostgreSQL, multi-row INSERT on SQLite): exact counts, valid histories, tracking
IDs drawn again when taken."""
from __future__ import annotations

from itertools import chain, count

from sqlalchemy import func, select

from app.domain.status import allowed_next_statuses
from app.domain.timeutil import as_utc, utcnow
from app.extensions import db
from app.models import Shipment, TrackingEvent
from app.services.shipments import demo


def test_seeding_in_several_batches_inserts_exactly_what_was_asked(app_ctx):
    progress = []
    made, made_events = demo.seed_demo(250, 5, seed=11, batch_size=100, progress=progress.append)
    assert made == 250 and sum(progress) == 250 and progress == [100, 100, 50]
    assert db.session.scalar(select(func.count()).select_from(Shipment)) == 250
    assert db.session.scalar(select(func.count()).select_from(TrackingEvent)) == made_events
    assert 4 * 250 <= made_events <= 6 * 250


def test_seeded_histories_follow_the_state_machine_and_lie_in_the_past(app_ctx):
    demo.seed_demo(120, 5, seed=3, batch_size=50)
    events = db.session.execute(
        select(TrackingEvent.shipment_id, TrackingEvent.status, TrackingEvent.occurred_at)
        .order_by(TrackingEvent.shipment_id, TrackingEvent.occurred_at, TrackingEvent.id)).all()
    histories: dict[int, list[str]] = {}
    now = utcnow()
    for shipment_id, status, occurred_at in events:
        histories.setdefault(shipment_id, []).append(status)
        assert as_utc(occurred_at) <= now
    statuses = dict(db.session.execute(select(Shipment.id, Shipment.status)).all())
    for shipment_id, history in histories.items():
        assert history[0] == "Booked"
        for before, after in zip(history, history[1:], strict=False):
            assert after in allowed_next_statuses(before)
        assert statuses[shipment_id] == history[-1]
    mobiles = db.session.execute(select(Shipment.mobile, func.count()).group_by(Shipment.mobile)).all()
    assert any(n > 1 for _mobile, n in mobiles)  # repeat customers: a search can find several


def test_a_tracking_id_already_taken_is_drawn_again(app_ctx, monkeypatch):
    draws = chain(["AAAAAAAA"], ["AAAAAAAA", "BBBBBBBB", "BBBBBBBB"], (f"{n:08X}" for n in count(1)))
    monkeypatch.setattr(demo, "new_tracking_id", lambda: next(draws))
    demo.seed_demo(1, 3, seed=1)
    demo.seed_demo(3, 3, seed=2)  # AAAAAAAA is in the table, BBBBBBBB twice in the batch
    tracking_ids = list(db.session.scalars(select(Shipment.tracking_id)))
    assert sorted(tracking_ids) == ["00000001", "00000002", "AAAAAAAA", "BBBBBBBB"]
