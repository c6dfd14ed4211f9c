"""Estimated delivery learned from history: areas, percentiles, fall-backs, the refresh and the backtest."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, select

from app.domain.timeutil import utcnow
from app.extensions import db
from app.models import DeliveryEstimate
from app.services.shipments.demo import seed_demo
from app.services.shipments.estimates import (
    DEFAULT_REMAINING_HOURS,
    Remaining,
    backtest,
    destination_area,
    estimate,
    learn,
    percentile,
    refresh_estimates,
    window_from,
)


@pytest.mark.parametrize("destination, area", [
    ("12 MG Road, Ernakulam, Kochi 682016", "pin:682"),
    ("Flat 4, Banjara Hills, Hyderabad - 500 034", "pin:500"),
    ("Kochi", "city:kochi"),
    ("Banjara Hills,  Hyderabad ", "city:hyderabad"),
    ("221B, Baker Street, LONDON", "city:london"),
    ("Road No. 12, Mumbai 4000", "city:mumbai"),
    ("123456789", "*"),
])
def test_destination_areas(destination, area):
    assert destination_area(destination) == area


def test_percentiles_interpolate():
    values = [float(v) for v in range(1, 11)]
    assert percentile(values, 0.5) == 5.5
    assert percentile(values, 0.9) == pytest.approx(9.1)
    assert percentile([3.0], 0.05) == 3.0


def test_learning_keeps_areas_with_enough_samples_and_always_feeds_the_network():
    samples = [("pin:682", "In Transit", 3600.0 * h) for h in range(1, 31)]
    samples += [("city:tiny", "In Transit", 7200.0)] * 5
    learned = learn(samples, min_samples=20)
    assert learned[("pin:682", "In Transit")].samples == 30
    assert ("city:tiny", "In Transit") not in learned
    assert learned[("*", "In Transit")].samples == 35


def test_a_window_already_past_moves_forward_instead_of_lying():
    now = utcnow()
    late = window_from(now - timedelta(days=5), Remaining(10, 3600, 7200, 10800), "area", now=now)
    assert late.earliest == now and late.latest > now and late.expected > now


@pytest.fixture
def history(app_ctx):
    seed_demo(3000, 5, seed=11)
    rows = refresh_estimates(window_days=90, min_samples=20)
    db.session.commit()
    return rows


def test_refresh_learns_per_area_and_network_rows(history):
    assert history == db.session.scalar(select(func.count()).select_from(DeliveryEstimate)) > 10
    network = db.session.get(DeliveryEstimate, ("*", "In Transit"))
    assert network.samples > 500
    assert network.p05_seconds <= network.p50_seconds <= network.p90_seconds
    near = db.session.get(DeliveryEstimate, ("city:hyderabad", "Picked Up"))
    far = db.session.get(DeliveryEstimate, ("city:kolkata", "Picked Up"))
    assert near.p50_seconds < far.p50_seconds  # the demo's near and far cities, learned back


def test_estimates_by_area_network_default_and_none(history):
    since = utcnow()
    area = estimate("Hyderabad", "Picked Up", since)
    assert area.basis == "area" and since < area.earliest <= area.expected <= area.latest
    assert estimate("Somewhere New", "Picked Up", since).basis == "network"
    assert estimate("Kochi", "Delivered", since) is None
    assert estimate("Kochi", "Cancelled", since) is None
    held = estimate("Hyderabad", "On Hold", since, held_from="Picked Up")
    assert held == area
    db.session.query(DeliveryEstimate).delete()
    db.session.commit()
    default = estimate("Kochi", "Out for Delivery", since)
    assert default.basis == "default"
    assert default.expected - since == timedelta(hours=DEFAULT_REMAINING_HOURS["Out for Delivery"][1])


def test_the_backtest_window_holds_at_least_80_percent_on_demo_history(history):
    result = backtest(window_days=90, min_samples=20, holdout=0.3)
    assert result.deliveries > 200 and result.estimates > 4 * result.deliveries
    assert result.inside_window >= 0.8
    assert 0 < result.median_abs_error_hours < 24


def test_refresh_and_backtest_commands(runner, app):
    with app.app_context():
        seed_demo(1500, 5, seed=3)
    refreshed = runner.invoke(args=["estimates", "refresh"])
    assert refreshed.exit_code == 0 and "Estimates refreshed" in refreshed.output
    tested = runner.invoke(args=["estimates", "backtest", "--holdout", "0.3"])
    assert tested.exit_code == 0, tested.output
    assert "Delivered inside the window" in tested.output and "Median absolute error" in tested.output


def test_backtest_on_an_empty_history_says_so(runner):
    result = runner.invoke(args=["estimates", "backtest"])
    assert result.exit_code != 0 and "No deliveries" in result.output
