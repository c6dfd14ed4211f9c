"""Live operations: what the push streams and the live map (/admin/live) are told, and how they hear of changes.

Rules:
- One hub per process (`live_hub`) fans changes out to every open stream of that process. It hears of them from
  the process's one LISTEN connection on PostgreSQL (tracking_cache.ChangeListener, shared with the tracking
  cache: never a connection per stream), or, on SQLite, from a poll loop every SSE_POLL_SECONDS (and at once from
  the process's own commits). Either way a stream gets the same: "this changed", never a document.
- Payloads are ids only: a tracking ID (`waybill_shipment_changed`, the tracking cache's channel), a courier's
  user id (`waybill_courier_moved`, from app.services.field.locations) or an alert id (`waybill_alert_raised`,
  from app.services.operations.alerts). NOTIFY is sent in the writer's transaction, so it is heard only if and when
  the change commits.
- A courier's state on the map is app.domain.field.live_state; "at risk" is app.services.operations.sla's, the
  one statement of it, for the parcels of the courier's open stops.
- The three figures are computed at most once a minute per process (FIGURES_SECONDS): today's completion rate
  (stops delivered ÷ stops on today's run sheets), parcels at risk of missing `promised_by`, and fleet
  utilisation (couriers with open stops ÷ couriers on shift).
- Nothing here holds a database connection between reads: callers in a stream close the session after each.
"""
from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from flask import current_app
from sqlalchemy import and_, case, func, or_, select

from app.db.dialects import notify
from app.domain.field import LiveState, StopState, live_state, on_shift
from app.domain.pricing import money, money_text
from app.domain.roles import Role
from app.domain.status import Status
from app.domain.timeutil import as_utc, isoformat_z, local_day_start, to_local, utcnow
from app.extensions import db
from app.models import Alert, CodCollection, CourierProfile, RunSheet, RunSheetStop, Shipment, User
from app.services.operations.sla import sla_lists
from app.services.planning.zones import feature_collection, list_zones, open_parcel_counts
from app.services.shipments.tracking_cache import CHANNEL as SHIPMENT_CHANNEL
from app.services.shipments.tracking_cache import EVERY_DOCUMENT

log = logging.getLogger(__name__)
COURIER_CHANNEL = "waybill_courier_moved"
ALERT_CHANNEL = "waybill_alert_raised"
KINDS = {SHIPMENT_CHANNEL: "shipment", COURIER_CHANNEL: "courier", ALERT_CHANNEL: "alert"}
FIGURES_SECONDS = 60.0
EVERY = EVERY_DOCUMENT  # a key that means "all of this kind" (the estimates were rebuilt, a reconnection)
_SESSION_KEYS = {"courier": "waybill_live_couriers", "alert": "waybill_live_alerts"}


# --- the hub -----------------------------------------------------------------------------------------------------


class Subscription:
    """One stream's interest: topics (kind, key) with key None for "every key of this kind". Changes coalesce
    until the stream takes them with `wait`."""

    def __init__(self, hub: LiveHub, topics: Iterable[tuple[str, str | None]]) -> None:
        self.hub = hub
        self.topics: set[tuple[str, str | None]] = set(topics)
        self._pending: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._ready = threading.Event()

    def notify(self, kind: str, key: str) -> None:
        with self._lock:
            self._pending.add((kind, key))
        self._ready.set()

    def wait(self, timeout: float) -> set[tuple[str, str]]:
        """What changed since the last call, waiting up to `timeout` seconds for something (empty: nothing)."""
        self._ready.wait(max(0.0, timeout))
        with self._lock:
            changed, self._pending = self._pending, set()
            self._ready.clear()
        return changed

    def add(self, topic: tuple[str, str | None]) -> None:
        self.hub._add_topic(self, topic)

    def close(self) -> None:
        self.hub.unsubscribe(self)


class LiveHub:
    """Topic → subscriptions of this process. `publish` is called by the listener or the poller (and by this
    process's own commits on SQLite); it only sets flags, so it never waits on a stream."""

    def __init__(self, max_streams: int) -> None:
        self.max_streams = max_streams
        self._lock = threading.Lock()
        self._topics: dict[tuple[str, str | None], set[Subscription]] = {}
        self._all: set[Subscription] = set()
        self.feed_ready = threading.Event()

    def subscribe(self, topics: Iterable[tuple[str, str | None]]) -> Subscription | None:
        """A new subscription, or None when this process serves max_streams already."""
        subscription = Subscription(self, topics)
        with self._lock:
            if len(self._all) >= self.max_streams:
                return None
            self._all.add(subscription)
            for topic in subscription.topics:
                self._topics.setdefault(topic, set()).add(subscription)
        return subscription

    def _add_topic(self, subscription: Subscription, topic: tuple[str, str | None]) -> None:
        with self._lock:
            subscription.topics.add(topic)
            self._topics.setdefault(topic, set()).add(subscription)

    def unsubscribe(self, subscription: Subscription) -> None:
        with self._lock:
            self._all.discard(subscription)
            for topic in subscription.topics:
                subscribers = self._topics.get(topic)
                if subscribers is not None:
                    subscribers.discard(subscription)
                    if not subscribers:
                        del self._topics[topic]

    def publish(self, kind: str, key: str) -> None:
        with self._lock:
            if key == EVERY:
                targets = {s for (k, _), subs in self._topics.items() if k == kind for s in subs}
            else:
                targets = set(self._topics.get((kind, key), ())) | set(self._topics.get((kind, None), ()))
        for subscription in targets:
            subscription.notify(kind, key)

    def publish_everything(self) -> None:
        """After a reconnection: anything may have been missed, so every stream looks again."""
        for kind in KINDS.values():
            self.publish(kind, EVERY)

    def __len__(self) -> int:
        return len(self._all)


def live_hub(app) -> LiveHub:
    """This process's hub, its feed started on first use (streams only: a process that serves none never
    listens or polls for them)."""
    hub = app.extensions.get("waybill_live_hub")
    if hub is not None and hub.feed_ready.is_set():
        return hub
    with _START_LOCK:
        hub = app.extensions.get("waybill_live_hub")
        if hub is None:
            hub = LiveHub(int(app.config["SSE_MAX_STREAMS"]))
            app.extensions["waybill_live_hub"] = hub
        if not hub.feed_ready.is_set():
            _start_feed(app, hub)
            hub.feed_ready.set()
    return hub


_START_LOCK = threading.Lock()


def _start_feed(app, hub: LiveHub) -> None:
    from sqlalchemy.engine import make_url

    from app.services.shipments.tracking_cache import ChangeListener

    url = make_url(app.config["SQLALCHEMY_DATABASE_URI"])
    if url.get_backend_name() == "postgresql":
        listener = app.extensions.get("waybill_tracking_listener")
        if listener is None:  # the cache is off: the streams open the process's one LISTEN connection
            listener = ChangeListener(None, url.set(drivername="postgresql").render_as_string(hide_password=False))
            app.extensions["waybill_tracking_listener"] = listener
            listener.start()

        def handle(channel: str, payload: str) -> None:
            hub.publish(KINDS[channel], payload)

        listener.on_connected.append(hub.publish_everything)
        for channel in KINDS:
            if not listener.listen(channel, handle):
                log.warning("The live streams' LISTEN on %s is not in place yet; it follows on connection", channel)
        return
    poller = ChangePoller(app, hub, float(app.config["SSE_POLL_SECONDS"]))
    app.extensions["waybill_live_poller"] = poller
    poller.start()


def stop_live_feed(app, timeout: float = 5.0) -> None:
    """Stop this app's poller (SQLite) or its streams' listener when the streams opened it (tests)."""
    poller = app.extensions.pop("waybill_live_poller", None)
    if poller is not None:
        poller.stop(timeout)
    hub = app.extensions.pop("waybill_live_hub", None)
    if hub is not None and app.extensions.get("waybill_tracking_listener") is not None \
            and app.extensions["waybill_tracking_listener"].cache is None:
        app.extensions.pop("waybill_tracking_listener").stop(timeout)


class ChangePoller:
    """SQLite's stand-in for LISTEN: every `interval` seconds, one look at what changed since the last look
    (shipments by `updated_at`, couriers by their last position and by their stops added or closed, alerts by
    id), published to the hub."""

    OVERLAP = timedelta(seconds=2)  # a commit may land a little after the time its row says

    def __init__(self, app, hub: LiveHub, interval: float) -> None:
        self.app, self.hub, self.interval = app, hub, max(0.05, interval)
        self._stop = threading.Event()
        self._seen_shipments: dict[str, datetime] = {}
        self._seen_couriers: dict[int, datetime | None] = {}
        self._seen_stops: dict[int, datetime] = {}
        self._last_alert: int | None = None
        self._since: datetime | None = None
        self._thread = threading.Thread(target=self._run, name="waybill-live-poller", daemon=True)

    def start(self) -> None:
        with self.app.app_context():
            self._look(publish=False)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                with self.app.app_context():
                    self._look(publish=True)
            except Exception:  # noqa: BLE001 - a failed look is tried again next time
                log.exception("The live streams' poll failed")

    def _look(self, publish: bool) -> None:
        try:
            now = utcnow()
            since = (self._since or now) - self.OVERLAP
            for tracking_id, updated_at in db.session.execute(
                    select(Shipment.tracking_id, Shipment.updated_at).where(Shipment.updated_at >= since)):
                stamp = as_utc(updated_at)
                if self._seen_shipments.get(tracking_id) != stamp:
                    self._seen_shipments[tracking_id] = stamp
                    if publish:
                        self.hub.publish("shipment", tracking_id)
            self._seen_shipments = {k: v for k, v in self._seen_shipments.items() if v >= since}
            # A stop added, closed or moved changes its courier's entry (stop counts, stops before yours).
            for stop_id, courier_id, added_at, closed_at in db.session.execute(
                    select(RunSheetStop.id, RunSheet.courier_id, RunSheetStop.added_at, RunSheetStop.closed_at)
                    .join(RunSheet, RunSheet.id == RunSheetStop.runsheet_id)
                    .where(or_(RunSheetStop.added_at >= since, RunSheetStop.closed_at >= since))):
                stamp = max(as_utc(moment) for moment in (added_at, closed_at) if moment is not None)
                if self._seen_stops.get(stop_id) != stamp:
                    self._seen_stops[stop_id] = stamp
                    if publish:
                        self.hub.publish("courier", str(courier_id))
            self._seen_stops = {k: v for k, v in self._seen_stops.items() if v >= since}
            self._since = now
            for courier_id, last_seen_at in db.session.execute(
                    select(CourierProfile.user_id, CourierProfile.last_seen_at)):
                if self._seen_couriers.get(courier_id, "unseen") != last_seen_at:
                    self._seen_couriers[courier_id] = last_seen_at
                    if publish:
                        self.hub.publish("courier", str(courier_id))
            newest = db.session.scalar(select(func.max(Alert.id)))
            if publish and newest is not None and (self._last_alert or 0) < newest:
                for alert_id in db.session.scalars(select(Alert.id).where(Alert.id > (self._last_alert or 0))):
                    self.hub.publish("alert", str(alert_id))
            self._last_alert = newest
        finally:
            db.session.remove()


# --- telling -----------------------------------------------------------------------------------------------------


def publish_courier_changed(courier_id: int) -> None:
    """Tell the streams that this courier's entry changed (they moved, or a stop of theirs closed, arrived or
    left), when (and only if) the current transaction commits: the live map's row and the "stops before you" of
    their recipients' tracking pages follow at once."""
    _publish("courier", COURIER_CHANNEL, str(courier_id))


def publish_alert_raised(alert_id: int) -> None:
    """Tell the staff streams of a new alert, when (and only if) the current transaction commits."""
    _publish("alert", ALERT_CHANNEL, str(alert_id))


def _publish(kind: str, channel: str, key: str) -> None:
    if notify(channel, key):
        return
    db.session.info.setdefault(_SESSION_KEYS[kind], set()).add(key)


def tell_local_streams_after_commit(session) -> None:
    """Session `after_commit` hook (SQLite): this process's streams hear of its own changes at once."""
    found = {kind: session.info.pop(key, None) for kind, key in _SESSION_KEYS.items()}
    if not any(found.values()):
        return
    from flask import has_app_context

    hub = current_app.extensions.get("waybill_live_hub") if has_app_context() else None
    if hub is None:
        return
    for kind, keys in found.items():
        for key in keys or ():
            hub.publish(kind, key)


def forget_after_rollback(session) -> None:
    for key in _SESSION_KEYS.values():
        session.info.pop(key, None)


_hooks_registered = False


def register_session_hooks() -> None:
    global _hooks_registered
    if _hooks_registered:
        return
    from sqlalchemy import event

    event.listen(db.session, "after_commit", tell_local_streams_after_commit)
    event.listen(db.session, "after_rollback", forget_after_rollback)
    _hooks_registered = True


# --- what the staff see ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveCourier:
    id: int
    username: str
    name: str | None
    state: LiveState
    lat: float | None
    lon: float | None
    last_seen_at: datetime | None
    stops_open: int
    stops_done: int
    stops_at_risk: int
    cod_collected: Decimal

    def to_dict(self) -> dict:
        position = None if self.lat is None or self.lon is None else {"lat": self.lat, "lon": self.lon}
        return {"username": self.username, "name": self.name or self.username, "state": self.state.value,
                "position": position, "last_seen_at": isoformat_z(self.last_seen_at),
                "stops_open": self.stops_open, "stops_done": self.stops_done, "stops_at_risk": self.stops_at_risk,
                "cod_collected": money_text(self.cod_collected)}


def live_couriers(now: datetime, *, courier_ids: Iterable[int] | None = None) -> list[LiveCourier]:
    """Every active courier (or those of `courier_ids`) as the live map shows them at `now`, by username.
    Four queries, and sla_lists for their open stops' parcels."""
    config = current_app.config
    timezone = config["DISPLAY_TIMEZONE"]
    local_now = to_local(now, timezone)
    start = local_day_start(local_now.date(), timezone)
    end = local_day_start(local_now.date() + timedelta(days=1), timezone)
    query = (select(User.id, User.username, CourierProfile.name, CourierProfile.shift_start,
                    CourierProfile.shift_end, CourierProfile.last_lat, CourierProfile.last_lon,
                    CourierProfile.last_seen_at, CourierProfile.moved_at)
             .outerjoin(CourierProfile, CourierProfile.user_id == User.id)
             .where(User.role == Role.COURIER.value, User.active.is_(True))
             .order_by(func.lower(User.username)))
    if courier_ids is not None:
        query = query.where(User.id.in_(list(courier_ids)))
    couriers = db.session.execute(query).all()
    if not couriers:
        return []
    ids = [row.id for row in couriers]
    open_stops = _open_stop_shipments(ids)
    at_risk = {p.shipment_id for p in sla_lists(now, shipment_ids=[s for ss in open_stops.values() for s in ss])
               .at_risk} if open_stops else set()
    done = _stops_done(ids, start, end)
    cash = _cod_collected(ids, start, end)
    silent_after: timedelta = config["COURIER_SILENT_AFTER"]
    entries = []
    for row in couriers:
        shift_now = row.shift_start is not None and on_shift(row.shift_start, row.shift_end, local_now.time())
        last_seen = as_utc(row.last_seen_at) if row.last_seen_at is not None else None
        moved = as_utc(row.moved_at) if row.moved_at is not None else None
        shipments = open_stops.get(row.id, [])
        risky = sum(1 for shipment_id in shipments if shipment_id in at_risk)
        state = live_state(now, on_shift_now=shift_now, last_seen_at=last_seen, moved_at=moved,
                           open_stops=len(shipments), stops_at_risk=risky, silent_after=silent_after)
        entries.append(LiveCourier(row.id, row.username, row.name, state, row.last_lat, row.last_lon, last_seen,
                                   len(shipments), done.get(row.id, 0), risky,
                                   money(cash.get(row.id, Decimal(0)))))
    return entries


def _open_stop_shipments(courier_ids: list[int]) -> dict[int, list[int]]:
    rows = db.session.execute(
        select(RunSheet.courier_id, RunSheetStop.shipment_id).select_from(RunSheetStop)
        .join(RunSheet, RunSheet.id == RunSheetStop.runsheet_id)
        .where(RunSheetStop.state == StopState.OPEN.value, RunSheet.courier_id.in_(courier_ids))).all()
    found: dict[int, list[int]] = {}
    for row in rows:
        found.setdefault(row.courier_id, []).append(row.shipment_id)
    return found


def _stops_done(courier_ids: list[int], start: datetime, end: datetime) -> dict[int, int]:
    rows = db.session.execute(
        select(RunSheet.courier_id, func.count()).select_from(RunSheetStop)
        .join(RunSheet, RunSheet.id == RunSheetStop.runsheet_id)
        .where(RunSheetStop.state == StopState.DONE.value, RunSheetStop.closed_at >= start,
               RunSheetStop.closed_at < end, RunSheet.courier_id.in_(courier_ids))
        .group_by(RunSheet.courier_id)).all()
    return {courier_id: int(count) for courier_id, count in rows}


def _cod_collected(courier_ids: list[int], start: datetime, end: datetime) -> dict[int, Decimal]:
    rows = db.session.execute(
        select(CodCollection.courier_id, func.sum(CodCollection.collected))
        .where(CodCollection.collected_at >= start, CodCollection.collected_at < end,
               CodCollection.courier_id.in_(courier_ids))
        .group_by(CodCollection.courier_id)).all()
    return {courier_id: Decimal(str(total)) for courier_id, total in rows}


def courier_ids_by_username(usernames: Iterable[str]) -> dict[str, int]:
    wanted = [u.lower() for u in usernames]
    rows = db.session.execute(select(User.id, User.username).where(func.lower(User.username).in_(wanted),
                                                                      User.role == Role.COURIER.value)).all()
    return {row.username: row.id for row in rows}


def courier_stops(username: str, now: datetime) -> dict:
    """A courier's run sheet as the map shows it when they are clicked: today's stops (local day) in sequence,
    each with its tracking ID, status, state and where it goes (the parcel's point, when it has one), and the
    courier's live entry (last seen, COD collected). NotFound for someone who is not a courier."""
    from app.services.field.locations import find_courier

    courier_id, name = find_courier(username)
    timezone = current_app.config["DISPLAY_TIMEZONE"]
    today = to_local(now, timezone).date()
    rows = db.session.execute(
        select(RunSheetStop.sequence, RunSheetStop.state, RunSheetStop.outcome, Shipment.tracking_id,
               Shipment.status, Shipment.destination, Shipment.destination_lat, Shipment.destination_lon,
               Shipment.promised_by)
        .join(RunSheet, RunSheet.id == RunSheetStop.runsheet_id)
        .join(Shipment, Shipment.id == RunSheetStop.shipment_id)
        .where(RunSheet.courier_id == courier_id,
               or_(RunSheet.date == today, RunSheetStop.state == StopState.OPEN.value),
               RunSheetStop.state != StopState.MOVED.value)
        .order_by(RunSheet.date, RunSheetStop.sequence, RunSheetStop.id)).all()
    entry = next(iter(live_couriers(now, courier_ids=[courier_id])), None)
    stops = [{"sequence": r.sequence, "tracking_id": r.tracking_id, "status": r.status, "state": r.state,
              "outcome": r.outcome, "destination": r.destination, "promised_by": isoformat_z(r.promised_by),
              "point": None if r.destination_lat is None else {"lat": r.destination_lat, "lon": r.destination_lon}}
             for r in rows]
    return {"courier": entry.to_dict() if entry else {"username": name}, "stops": stops}


# --- the three figures -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LiveFigures:
    computed_at: datetime
    on_run_sheets: int
    delivered: int
    at_risk: int
    couriers_on_shift: int
    couriers_with_open_stops: int

    @property
    def completion_rate(self) -> float | None:
        return None if not self.on_run_sheets else self.delivered / self.on_run_sheets

    @property
    def utilisation(self) -> float | None:
        return None if not self.couriers_on_shift else self.couriers_with_open_stops / self.couriers_on_shift

    def to_dict(self) -> dict:
        return {"computed_at": isoformat_z(self.computed_at),
                "completion_rate": _ratio(self.completion_rate), "delivered": self.delivered,
                "on_run_sheets": self.on_run_sheets, "at_risk": self.at_risk,
                "utilisation": _ratio(self.utilisation), "couriers_on_shift": self.couriers_on_shift,
                "couriers_with_open_stops": self.couriers_with_open_stops}


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


_figures_lock = threading.Lock()


def live_figures(now: datetime) -> LiveFigures:
    """The three figures, computed at most once every FIGURES_SECONDS per process (see the module's rules)."""
    cached: LiveFigures | None = current_app.extensions.get("waybill_live_figures")
    if cached is not None and timedelta(0) <= now - cached.computed_at < timedelta(seconds=FIGURES_SECONDS):
        return cached
    with _figures_lock:
        figures = _compute_figures(now)
        current_app.extensions["waybill_live_figures"] = figures
    return figures


def _compute_figures(now: datetime) -> LiveFigures:
    timezone = current_app.config["DISPLAY_TIMEZONE"]
    local_now = to_local(now, timezone)
    counted = db.session.execute(
        select(func.count(),
               func.coalesce(func.sum(case((and_(RunSheetStop.state == StopState.DONE.value,
                                                 RunSheetStop.outcome == Status.DELIVERED.value), 1), else_=0)), 0))
        .select_from(RunSheetStop)
        .join(RunSheet, RunSheet.id == RunSheetStop.runsheet_id)
        .where(RunSheet.date == local_now.date(), RunSheetStop.state != StopState.MOVED.value)).one()
    at_risk = len(sla_lists(now).at_risk)
    shifts = db.session.execute(
        select(User.id, CourierProfile.shift_start, CourierProfile.shift_end)
        .join(CourierProfile, CourierProfile.user_id == User.id)
        .where(User.role == Role.COURIER.value, User.active.is_(True))).all()
    on_shift_ids = {row.id for row in shifts if on_shift(row.shift_start, row.shift_end, local_now.time())}
    busy = set(db.session.scalars(
        select(RunSheet.courier_id).join(RunSheetStop, RunSheetStop.runsheet_id == RunSheet.id)
        .where(RunSheetStop.state == StopState.OPEN.value).distinct()))
    return LiveFigures(now, int(counted[0]), int(counted[1]), at_risk, len(on_shift_ids), len(busy & on_shift_ids))


# --- the map's other layers, and the staff stream's events --------------------------------------------------------


def live_zones() -> dict:
    """Zones as GeoJSON with their hubs and open-parcel counts (app.services.planning.zones)."""
    return feature_collection(list_zones(), open_parcel_counts())


def live_overview(now: datetime) -> dict:
    """The live map's whole state: figures, couriers, zones."""
    return {"figures": live_figures(now).to_dict(), "couriers": [c.to_dict() for c in live_couriers(now)],
            "zones": live_zones()}


def shipment_events(tracking_ids: Iterable[str]) -> list[dict]:
    """The staff stream's `shipment` events: tracking ID, status and when it changed, for each known ID."""
    wanted = [t for t in tracking_ids if t != EVERY]
    if not wanted:
        return []
    rows = db.session.execute(select(Shipment.tracking_id, Shipment.status, Shipment.updated_at, Shipment.zone_id)
                              .where(Shipment.tracking_id.in_(wanted)).order_by(Shipment.tracking_id)).all()
    return [{"tracking_id": r.tracking_id, "status": r.status, "zone_id": r.zone_id,
             "updated_at": isoformat_z(as_utc(r.updated_at))} for r in rows]


def alert_events(alert_ids: Iterable[str]) -> list[dict]:
    """The staff stream's `alert` events: what the alerts page shows of each (details hold no contact)."""
    wanted = [int(a) for a in alert_ids if a.isdigit()]
    if not wanted:
        return []
    rows = db.session.execute(
        select(Alert.id, Alert.kind, Alert.cause, Alert.raised_at, Alert.details, Shipment.tracking_id,
               User.username)
        .outerjoin(Shipment, Shipment.id == Alert.shipment_id)
        .outerjoin(User, User.id == Alert.courier_id)
        .where(Alert.id.in_(wanted)).order_by(Alert.id)).all()
    return [{"id": r.id, "kind": r.kind, "raised_at": isoformat_z(as_utc(r.raised_at)),
             "tracking_id": r.tracking_id, "courier": r.username, "details": r.details} for r in rows]


def courier_ids_of(keys: Iterable[str]) -> list[int] | None:
    """The courier ids in a set of changed keys; None when every courier may have changed."""
    keys = list(keys)
    if EVERY in keys:
        return None
    return [int(k) for k in keys if k.isdigit()]


def open_stop_courier(tracking_id: str) -> int | None:
    """The courier holding this parcel's open stop, if any (the public stream follows them while the tracking
    answer shows where they are)."""
    return db.session.scalar(
        select(RunSheet.courier_id).join(RunSheetStop, RunSheetStop.runsheet_id == RunSheet.id)
        .join(Shipment, Shipment.id == RunSheetStop.shipment_id)
        .where(Shipment.tracking_id == tracking_id, RunSheetStop.state == StopState.OPEN.value).limit(1))
