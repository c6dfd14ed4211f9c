"""A per-process cache of public tracking documents, kept correct across processes by PostgreSQL NOTIFY.

Every status change publishes `NOTIFY waybill_shipment_changed, '<tracking id>'` inside its own transaction, so
the notification is delivered to every listening process only if and when the change commits. Each process runs
one listener thread on its own connection and evicts what it is told about; the writing process also evicts at
once after its commit, so it reads its own writes without waiting for the round trip.

Correctness rules:
- The cache is used only while the listener is connected. When the connection drops, the cache is switched off
  and emptied; after LISTEN succeeds again it is emptied once more and switched back on.
- A document read from the database is stored only if nothing was evicted for its key (and no clear happened)
  between the start of the read and the store, so a fill that raced with a change never stores the old version.
- Only PostgreSQL has LISTEN/NOTIFY: on SQLite the cache stays off and every look-up reads the database.
"""
from __future__ import annotations

import contextlib
import logging
import select as io_select
import socket
import threading
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import text

from app.db.dialects import notify
from app.extensions import db

log = logging.getLogger(__name__)
CHANNEL = "waybill_shipment_changed"
# Published instead of a tracking ID when every document changed at once (the estimates were rebuilt).
EVERY_DOCUMENT = "*"


@dataclass(frozen=True)
class CachedDocument:
    etag: str
    body: bytes
    status: str | None = None  # the shipment's, so a reader can tell without parsing the body


class DocumentCache:
    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[str, CachedDocument] = OrderedDict()
        self._evictions: dict[str, int] = {}
        self._generation = 0
        self._lock = threading.Lock()
        self.enabled = False

    def get(self, key: str) -> CachedDocument | None:
        if not self.enabled:
            return None
        with self._lock:
            document = self._entries.get(key)
            if document is not None:
                self._entries.move_to_end(key)
            return document

    def ticket(self, key: str) -> tuple[int, int]:
        """Taken before reading the database; `put` refuses the document if the key changed since."""
        with self._lock:
            return self._generation, self._evictions.get(key, 0)

    def put(self, key: str, document: CachedDocument, ticket: tuple[int, int]) -> bool:
        with self._lock:
            if not self.enabled or ticket != (self._generation, self._evictions.get(key, 0)):
                return False
            self._entries[key] = document
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
            return True

    def evict(self, key: str) -> None:
        with self._lock:
            if key == EVERY_DOCUMENT:
                self._clear_locked()
                return
            self._entries.pop(key, None)
            self._evictions[key] = self._evictions.get(key, 0) + 1
            if len(self._evictions) > 4 * self.max_entries:
                self._clear_locked()

    def clear(self) -> None:
        with self._lock:
            self._clear_locked()

    def _clear_locked(self) -> None:
        self._entries.clear()
        self._evictions.clear()
        self._generation += 1

    def __len__(self) -> int:
        return len(self._entries)


class ChangeListener:
    """The process's one LISTEN connection (an autocommit psycopg2 connection in a thread of its own).

    It LISTENs on CHANNEL and evicts the tracking IDs it hears about from `cache` (when there is one), and on any
    channel added with `listen` (the live streams: app.services.operations.live) it hands each payload to that
    channel's handlers. `on_connected` hooks run after every (re)connection: anything sent while it was
    disconnected was missed, so listeners start again from the current state.
    """

    def __init__(self, cache: DocumentCache | None, conninfo: str, reconnect_seconds: float = 1.0) -> None:
        # Imported here, in the caller's thread: a missing driver must stop the app, not leave the cache off.
        self._driver = listen_driver()
        self.cache = cache
        self.conninfo = conninfo
        self.reconnect_seconds = reconnect_seconds
        self._stop = threading.Event()
        # stop() and listen() write to one end, which the listener's select() watches beside the connection: it
        # acts at once rather than at the end of its one-second wait.
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._wake_reader.setblocking(False)
        self._handlers: dict[str, list] = {CHANNEL: []}
        self._listening: set[str] = set()
        self._handlers_lock = threading.Lock()
        self._listened = threading.Condition(self._handlers_lock)
        self.on_connected: list = []
        self.connected = threading.Event()
        self._thread = threading.Thread(target=self._run, name="waybill-cache-listener", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def listen(self, channel: str, handler, wait_seconds: float = 5.0) -> bool:
        """Hand every payload NOTIFYed on `channel` to `handler(channel, payload)` (in the listener's thread: it
        must be quick). Waits up to `wait_seconds` for the LISTEN to be in place; True when it is."""
        with self._handlers_lock:
            self._handlers.setdefault(channel, []).append(handler)
        self._wake()
        with self._listened:
            return self._listened.wait_for(lambda: channel in self._listening, wait_seconds)

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake()
        self._thread.join(timeout)
        if not self._thread.is_alive():
            self._wake_reader.close()
            self._wake_writer.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"x")

    def _listen_to_new_channels(self, conn) -> None:
        with self._handlers_lock:
            wanted = [channel for channel in self._handlers if channel not in self._listening]
        for channel in wanted:
            with conn.cursor() as cursor:
                cursor.execute(f"LISTEN {channel}")  # our own constants: no user input reaches this
        with self._listened:
            self._listening.update(wanted)
            self._listened.notify_all()

    def _dispatch(self, channel: str, payload: str) -> None:
        if channel == CHANNEL and self.cache is not None:
            self.cache.evict(payload)
        with self._handlers_lock:
            handlers = list(self._handlers.get(channel, ()))
        for handler in handlers:
            try:
                handler(channel, payload)
            except Exception:  # noqa: BLE001 - one bad handler must not deafen the others
                log.exception("A change handler failed on channel %s", channel)

    def _run(self) -> None:
        while not self._stop.is_set():
            conn = None
            try:
                conn = self._driver.connect(self.conninfo, keepalives=1, keepalives_idle=30,
                                            keepalives_interval=10, keepalives_count=3)
                conn.autocommit = True
                self._listen_to_new_channels(conn)
                if self.cache is not None:
                    self.cache.clear()  # anything stored before LISTEN may have missed a change
                    self.cache.enabled = True
                self.connected.set()
                for hook in list(self.on_connected):
                    hook()
                while not self._stop.is_set():
                    # Readable means a notification or a closed connection; poll() tells which (and raises
                    # OperationalError on the latter). stop() and listen() wake the wait through the other socket.
                    if not _readable(conn, self._wake_reader, 1.0):
                        self._drain_wake()
                        self._listen_to_new_channels(conn)
                        continue
                    conn.poll()
                    while conn.notifies:
                        notify = conn.notifies.pop(0)
                        self._dispatch(notify.channel, notify.payload)
            except Exception as exc:  # noqa: BLE001 - any failure means: stop trusting the cache, reconnect
                if not self._stop.is_set():
                    reason = (str(exc).strip().splitlines() or [""])[0]
                    log.warning("Tracking cache listener lost its connection (%s: %s); cache off until it "
                                "reconnects", type(exc).__name__, reason)
            finally:
                if self.cache is not None:
                    self.cache.enabled = False
                    self.cache.clear()
                self.connected.clear()
                with self._listened:
                    self._listening.clear()
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            self._stop.wait(self.reconnect_seconds)

    def _drain_wake(self) -> None:
        with contextlib.suppress(OSError):
            while self._wake_reader.recv(64):
                pass


def listen_driver():
    """psycopg2, the driver the listener needs for LISTEN (poll/notifies); a clear error when it is missing."""
    try:
        import psycopg2
    except ImportError as exc:
        raise RuntimeError("The tracking cache needs the PostgreSQL driver psycopg2 (pip install "
                           "psycopg2-binary, see requirements.txt), or TRACK_CACHE_ENABLED=false.") from exc
    return psycopg2


def _readable(conn, wake: socket.socket, timeout: float) -> bool:
    """True when the connection's socket became readable within `timeout` seconds, False when it did not or when
    `wake` did first (the caller then finds it is told to stop)."""
    readable, _, _ = io_select.select([conn, wake], [], [], timeout)
    return conn in readable


def publish_change(tracking_id: str) -> None:
    """Tell every process that this shipment changed, when (and only if) the current transaction commits."""
    notify(CHANNEL, tracking_id)
    changed = db.session.info.setdefault("waybill_changed_tracking_ids", set())
    changed.add(tracking_id)


def publish_changes(tracking_ids: list[str]) -> None:
    """publish_change for many shipments, in one statement (a hub's batch of scans changes hundreds at once)."""
    if not tracking_ids:
        return
    if db.session.get_bind().dialect.name == "postgresql":
        db.session.execute(text("SELECT pg_notify(:channel, changed) FROM unnest(CAST(:ids AS text[])) AS changed"),
                           {"channel": CHANNEL, "ids": list(tracking_ids)})
    db.session.info.setdefault("waybill_changed_tracking_ids", set()).update(tracking_ids)


def evict_after_commit(session) -> None:
    """Session `after_commit` hook: the writing process forgets what it just changed."""
    changed = session.info.pop("waybill_changed_tracking_ids", None)
    if not changed:
        return
    cache = _current_cache()
    if cache is not None:
        for tracking_id in changed:
            cache.evict(tracking_id)
    _tell_local_streams(session, changed)


def discard_after_rollback(session) -> None:
    session.info.pop("waybill_changed_tracking_ids", None)


def _tell_local_streams(session, changed: set[str]) -> None:
    """On SQLite (no NOTIFY) this process's own live streams hear of its changes at once; other processes'
    streams find them by polling (app.services.operations.live)."""
    from flask import current_app, has_app_context

    if not has_app_context():
        return
    hub = current_app.extensions.get("waybill_live_hub")
    if hub is not None and session.get_bind().dialect.name != "postgresql":
        for tracking_id in changed:
            hub.publish("shipment", tracking_id)


def _current_cache() -> DocumentCache | None:
    from flask import current_app, has_app_context

    if not has_app_context():
        return None
    return current_app.extensions.get("waybill_tracking_cache")


_hooks_registered = False


def init_tracking_cache(app) -> DocumentCache:
    """Give the app its cache and, on PostgreSQL with TRACK_CACHE_ENABLED, start its change listener."""
    global _hooks_registered
    from sqlalchemy import event
    from sqlalchemy.engine import make_url

    if not _hooks_registered:
        event.listen(db.session, "after_commit", evict_after_commit)
        event.listen(db.session, "after_rollback", discard_after_rollback)
        _hooks_registered = True
    cache = DocumentCache(app.config["TRACK_CACHE_MAX_ENTRIES"])
    app.extensions["waybill_tracking_cache"] = cache
    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if app.config["TRACK_CACHE_ENABLED"] and url.get_backend_name() == "postgresql":
        conninfo = url.set(drivername="postgresql").render_as_string(hide_password=False)
        listener = ChangeListener(cache, conninfo)
        app.extensions["waybill_tracking_listener"] = listener
        listener.start()
    return cache


def stop_tracking_cache(app, timeout: float = 5.0) -> None:
    listener = app.extensions.pop("waybill_tracking_listener", None)
    if listener is not None:
        listener.stop(timeout)
