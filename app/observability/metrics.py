"""Prometheus metrics: the objects every layer may update, and the exposition for GET /metrics.

A neutral module (prometheus_client and the standard library only), so the request hooks, the outbox worker and
the tracking cache count without importing each other. Under Gunicorn, PROMETHEUS_MULTIPROC_DIR is set before
any worker starts (gunicorn.conf.py), so every process writes its values to files there and a scrape of any
worker adds up all of them; gauges that describe a live process ("livesum") drop a worker once it has exited
(gunicorn.conf.py's child_exit calls mark_process_dead).

Figures computed at scrape time (outbox rows by state) are not kept here: the scrape asks the database.
"""
from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

# Requests, per Flask endpoint (a bounded set of names, never the raw path: paths carry IDs and mobiles).
HTTP_REQUESTS = Counter("waybill_http_requests", "HTTP requests answered.", ["endpoint", "method", "status"])
HTTP_LATENCY = Histogram(
    "waybill_http_request_duration_seconds", "Time from the start of the request to its response.",
    ["endpoint", "status"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)
UNMATCHED_ENDPOINT = "unmatched"  # a URL no route serves (404, 405)

# The outbox worker, per channel: "sent"; "failed" (will be tried again); "dead" (given up).
DELIVERIES = Counter("waybill_outbox_deliveries", "Outbox deliveries by outcome.", ["channel", "outcome"])

# The public tracking document cache ("miss" includes look-ups while the cache is off).
TRACKING_CACHE = Counter("waybill_tracking_cache_lookups", "Tracking document cache look-ups.", ["result"])

# Operational alerts raised (app.services.operations.alerts), by kind.
ALERTS_RAISED = Counter("waybill_alerts_raised", "Operational alerts raised.", ["kind"])

# The database connection pools of the live processes, summed.
DB_POOL_IN_USE = Gauge("waybill_db_pool_connections_in_use", "Pooled database connections checked out.",
                       multiprocess_mode="livesum")
DB_POOL_OPEN = Gauge("waybill_db_pool_connections_open", "Database connections the pools hold open.",
                     multiprocess_mode="livesum")
DB_POOL_CAPACITY = Gauge("waybill_db_pool_capacity", "Connections the pools may open (size + overflow).",
                         multiprocess_mode="livesum")


def count_request(endpoint: str | None, method: str, status: int, seconds: float) -> None:
    name = endpoint or UNMATCHED_ENDPOINT
    HTTP_REQUESTS.labels(name, method, str(status)).inc()
    HTTP_LATENCY.labels(name, str(status)).observe(seconds)


def count_delivery(channel: str, outcome: str, amount: int = 1) -> None:
    if amount:
        DELIVERIES.labels(channel, outcome).inc(amount)


def count_cache_lookup(hit: bool) -> None:
    TRACKING_CACHE.labels("hit" if hit else "miss").inc()


def watch_pool(engine) -> None:
    """Keep the pool gauges of this process in step with `engine`'s pool (checkouts, connects, closes)."""
    from sqlalchemy import event

    pool = engine.pool
    size = getattr(pool, "size", None)
    overflow = getattr(pool, "_max_overflow", 0)
    if callable(size):
        DB_POOL_CAPACITY.inc(size() + max(overflow, 0))
    event.listen(pool, "checkout", lambda *_: DB_POOL_IN_USE.inc())
    event.listen(pool, "checkin", lambda *_: DB_POOL_IN_USE.dec())
    event.listen(pool, "connect", lambda *_: DB_POOL_OPEN.inc())
    event.listen(pool, "close", lambda *_: DB_POOL_OPEN.dec())
    event.listen(pool, "close_detached", lambda *_: DB_POOL_OPEN.dec())


class OutboxCollector:
    """waybill_outbox_rows{channel,state} and waybill_outbox_oldest_pending_age_seconds{channel}, from figures
    the scrape read from the database a moment ago."""

    def __init__(self, rows: Iterable[tuple[str, str, int]], oldest_pending_age: dict[str, float]) -> None:
        self.rows = list(rows)
        self.oldest_pending_age = oldest_pending_age

    def collect(self):
        rows = GaugeMetricFamily("waybill_outbox_rows", "Outbox rows waiting or given up, by channel and state "
                                 "(sent rows are counted by waybill_outbox_deliveries_total).",
                                 labels=["channel", "state"])
        for channel, state, count in self.rows:
            rows.add_metric([channel, state], count)
        yield rows
        age = GaugeMetricFamily("waybill_outbox_oldest_pending_age_seconds",
                                "Age of the oldest pending outbox row (0 when none is pending).", labels=["channel"])
        for channel, seconds in sorted(self.oldest_pending_age.items()):
            age.add_metric([channel], seconds)
        yield age


class _ProcessMetrics:
    """This process's own registry, when there is no multiprocess directory (the dev server, tests)."""

    def collect(self):
        return REGISTRY.collect()


def exposition(multiprocess_dir: str | None, extra_collectors: Iterable = ()) -> tuple[bytes, str]:
    """The text exposition of every process's metrics (or this process's) plus the scrape-time collectors."""
    registry = CollectorRegistry()
    if multiprocess_dir:
        MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry.register(_ProcessMetrics())
    for collector in extra_collectors:
        registry.register(collector)
    return generate_latest(registry), CONTENT_TYPE_LATEST
