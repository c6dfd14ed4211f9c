"""Connection-pool liveness: ping a pooled connection only when it has been idle for a while.

SQLAlchemy's `pool_pre_ping` pings on every checkout: one extra round trip for every request. A connection that
was in use a moment ago is almost certainly alive, so it is handed out as it is; one that sat idle longer than
the threshold (after a quiet spell, when a database restart or failover may have happened) is pinged first, and a
dead one is replaced before the request sees it. A connection that died within the threshold fails its request
once; SQLAlchemy then recognises the disconnect and invalidates the pool's older connections.
"""
from __future__ import annotations

import time

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError

_CHECKED_IN = "waybill_checked_in_at"


def ping_idle_connections(engine: Engine, idle_seconds: float) -> None:
    """Register the checkin/checkout hooks on `engine`'s pool."""

    @event.listens_for(engine, "checkin")
    def note_checkin(_dbapi_connection, record) -> None:
        record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def ping_if_idle(dbapi_connection, record, _proxy) -> None:
        checked_in = record.info.get(_CHECKED_IN)
        if checked_in is None or time.monotonic() - checked_in < idle_seconds:
            return  # just opened, or returned a moment ago
        try:
            alive = engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:  # noqa: BLE001 - any failure of the ping means the same: use another connection
            raise DisconnectionError("pooled connection is dead") from exc
        if not alive:
            raise DisconnectionError("pooled connection is dead")
