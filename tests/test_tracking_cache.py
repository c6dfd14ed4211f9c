"""The per-process tracking cache and its cross-process invalidation through PostgreSQL NOTIFY."""
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import text

from app import create_app
from app.extensions import db
from app.services.shipments.public_document import public_tracking_document
from app.services.shipments.status_changes import record_status_change
from app.services.shipments.tracking_cache import CachedDocument, DocumentCache, stop_tracking_cache

DOC_A, DOC_B = CachedDocument("a", b"{}"), CachedDocument("b", b"{}")


# --- pure cache semantics -------------------------------------------------------------------------------

def enabled_cache(size=10) -> DocumentCache:
    cache = DocumentCache(size)
    cache.enabled = True
    return cache


def test_a_disabled_cache_stores_and_returns_nothing():
    cache = DocumentCache(10)
    assert not cache.put("K", DOC_A, cache.ticket("K"))
    assert cache.get("K") is None


def test_a_fill_that_raced_with_an_eviction_is_refused():
    cache = enabled_cache()
    ticket = cache.ticket("K")  # a reader starts loading K ...
    cache.evict("K")  # ... a change to K commits meanwhile ...
    assert not cache.put("K", DOC_A, ticket)  # ... so what it read may be old: not stored
    assert cache.get("K") is None
    assert cache.put("K", DOC_B, cache.ticket("K"))
    assert cache.get("K") is DOC_B


def test_a_fill_that_raced_with_a_clear_is_refused():
    cache = enabled_cache()
    ticket = cache.ticket("K")
    cache.clear()
    assert not cache.put("K", DOC_A, ticket)


def test_evicting_another_key_does_not_block_a_fill():
    cache = enabled_cache()
    ticket = cache.ticket("K")
    cache.evict("OTHER")
    assert cache.put("K", DOC_A, ticket)


def test_least_recently_used_entries_go_first():
    cache = enabled_cache(size=2)
    for key in ["A", "B"]:
        cache.put(key, DOC_A, cache.ticket(key))
    cache.get("A")
    cache.put("C", DOC_A, cache.ticket("C"))
    assert cache.get("B") is None and cache.get("A") is DOC_A and len(cache) == 2


# --- against the database -------------------------------------------------------------------------------

def document(app, tracking_id: str) -> dict:
    with app.test_request_context():
        return json.loads(public_tracking_document(tracking_id).body)


def test_document_matches_the_json_api_exactly(client, create_shipment, app):
    tid = create_shipment()
    assert document(app, tid.lower()) == client.get(f"/track/{tid}").get_json()


def test_unknown_or_malformed_ids_are_not_found(app):
    from app.errors import NotFound
    for typed in ["FFFFFFFF", "x", "A" * 40]:
        with app.test_request_context(), pytest.raises(NotFound):
            public_tracking_document(typed)


@pytest.fixture
def cached_app(make_config, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("the tracking cache needs PostgreSQL LISTEN/NOTIFY; on SQLite it stays off")
    apps = []

    def make():
        application = create_app(make_config(TRACK_CACHE_ENABLED=True))
        listener = application.extensions["waybill_tracking_listener"]
        assert listener.connected.wait(10), "listener did not connect"
        apps.append(application)
        return application
    yield make
    for application in apps:
        stop_tracking_cache(application)
        with application.app_context():
            db.engine.dispose()


def wait_until(predicate, seconds=10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def change(app, tid: str, status: str, commit: bool = True) -> None:
    with app.app_context():
        record_status_change(tid, status, "Hub", None, actor="test")
        if commit:
            db.session.commit()
        else:
            db.session.rollback()
        db.session.remove()


def test_sqlite_never_caches(make_config, database_url, create_shipment):
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite behaviour")
    application = create_app(make_config(TRACK_CACHE_ENABLED=True))
    assert "waybill_tracking_listener" not in application.extensions
    assert application.extensions["waybill_tracking_cache"].enabled is False


def test_a_change_in_another_process_evicts_this_process_copy(cached_app, create_shipment):
    reader, writer = cached_app(), cached_app()  # two apps: two caches, two listeners, like two processes
    tid = create_shipment()
    assert document(reader, tid)["status"] == "Booked"
    reader_cache = reader.extensions["waybill_tracking_cache"]
    assert reader_cache.get(tid) is not None
    change(writer, tid, "Picked Up")
    assert wait_until(lambda: reader_cache.get(tid) is None), "reader was not told about the change"
    assert document(reader, tid)["status"] == "Picked Up"


def test_the_writing_process_reads_its_own_write_at_once(cached_app, create_shipment):
    application = cached_app()
    tid = create_shipment()
    assert document(application, tid)["status"] == "Booked"
    change(application, tid, "Picked Up")
    assert document(application, tid)["status"] == "Picked Up"  # no wait: evicted at commit


def test_a_rolled_back_change_evicts_nothing(cached_app, create_shipment):
    reader, writer = cached_app(), cached_app()
    tid, marker = create_shipment(), create_shipment()
    document(reader, tid), document(reader, marker)
    cache = reader.extensions["waybill_tracking_cache"]
    change(writer, tid, "Picked Up", commit=False)
    change(writer, marker, "Picked Up")  # notifications arrive in commit order: after this, nothing is pending
    assert wait_until(lambda: cache.get(marker) is None)
    assert cache.get(tid) is not None
    assert document(reader, tid)["status"] == "Booked"


def test_losing_the_listener_connection_turns_the_cache_off_until_it_is_back(cached_app, create_shipment, app):
    reader = cached_app()
    tid = create_shipment()
    document(reader, tid)
    cache = reader.extensions["waybill_tracking_cache"]
    listener = reader.extensions["waybill_tracking_listener"]
    with app.app_context():
        db.session.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE query LIKE 'LISTEN waybill_shipment_changed%' AND pid <> pg_backend_pid() "
                                "AND datname = current_database()"))
        db.session.commit()
    assert wait_until(lambda: not listener.connected.is_set() or cache.get(tid) is None)
    assert cache.get(tid) is None  # emptied: changes made while deaf would be missed
    assert listener.connected.wait(10)  # reconnects by itself
    assert wait_until(lambda: cache.enabled)
    assert document(reader, tid)["status"] == "Booked" and cache.get(tid) is not None


MISSING_DRIVER = """
import sys
sys.modules["psycopg2"] = None  # what Python does for a package that is not installed: ImportError on import
from app.services.shipments.tracking_cache import ChangeListener, DocumentCache
try:
    ChangeListener(DocumentCache(10), "postgresql://nobody@127.0.0.1:1/none")
except RuntimeError as exc:
    print("refused:", exc)
else:
    print("started without a driver")
"""


def test_a_missing_driver_stops_the_listener_from_being_created_at_all():
    result = subprocess.run([sys.executable, "-c", MISSING_DRIVER], capture_output=True, text=True, timeout=60,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("refused:"), result.stdout
    assert "psycopg2-binary" in result.stdout and "TRACK_CACHE_ENABLED=false" in result.stdout


def test_hits_and_misses_are_counted(cached_app, create_shipment):
    from prometheus_client import REGISTRY

    def lookups(result: str) -> float:
        return REGISTRY.get_sample_value("waybill_tracking_cache_lookups_total", {"result": result}) or 0.0

    tid = create_shipment()
    app = cached_app()
    client = app.test_client()
    hits, misses = lookups("hit"), lookups("miss")
    client.get(f"/track/{tid}")  # read from the database and stored
    client.get(f"/track/{tid}")
    client.get(f"/track/{tid.lower()}")
    assert (lookups("hit") - hits, lookups("miss") - misses) == (2, 1)
