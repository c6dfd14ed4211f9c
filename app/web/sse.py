"""Server-sent events: the framing (text/event-stream) and the loop every stream runs.

The contract of every stream (GET /track/<id>/events, GET /admin/live/events):
- It opens with `retry: SSE_RETRY_MS` and the current state (also after a reconnection with `Last-Event-ID`:
  whatever was missed, the current state replaces it).
- Each event has an `id:`; what changed is sent within the hub's wake-up (NOTIFY, or the SQLite poll).
- A comment line every SSE_HEARTBEAT_SECONDS keeps proxies (the ALB drops connections idle for 60 s) from
  closing it, and finds clients that left.
- It ends after SSE_MAX_SECONDS: the browser reconnects after `retry`, so a deployment drains.
- The database session is closed after every read: an idle stream holds no connection.
"""
from __future__ import annotations

import functools
import itertools
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

from flask import Response, current_app, stream_with_context

from app.extensions import db


@dataclass(frozen=True)
class Event:
    data: str
    event: str | None = None
    id: str | None = None

    def encode(self) -> str:
        lines = []
        if self.id is not None:
            lines.append(f"id: {self.id}")
        if self.event is not None:
            lines.append(f"event: {self.event}")
        lines.extend(f"data: {line}" for line in self.data.split("\n"))
        return "\n".join(lines) + "\n\n"


def json_event(payload: object, event: str | None = None, id: str | None = None) -> Event:  # noqa: A002
    return Event(json.dumps(payload, separators=(",", ":"), ensure_ascii=False), event, id)


class EventIds:
    """Ids for a stream's events: the time in milliseconds and a counter, so they only grow within a stream
    and tell a reconnection roughly where it was."""

    def __init__(self) -> None:
        self._counter = itertools.count(1)

    def next(self) -> str:
        return f"{time.time_ns() // 1_000_000}-{next(self._counter)}"


Changes = set[tuple[str, str]]


def event_stream(subscription, *, first: Callable[[], Iterable[Event]],
                 on_change: Callable[[Changes], Iterable[Event]],
                 on_heartbeat: Callable[[], Iterable[Event]] | None = None) -> Response:
    """The streaming response: `first()` at once, then `on_change(changes)` whenever the subscription wakes,
    a comment line (and `on_heartbeat()`) every SSE_HEARTBEAT_SECONDS, until SSE_MAX_SECONDS have passed."""
    config = current_app.config
    heartbeat = max(0.05, float(config["SSE_HEARTBEAT_SECONDS"]))
    max_seconds = max(0.05, float(config["SSE_MAX_SECONDS"]))
    retry_ms = int(config["SSE_RETRY_MS"])

    def read(produce: Callable[[], Iterable[Event]]) -> str:
        try:
            return "".join(event.encode() for event in produce())
        finally:
            db.session.close()  # back to the pool: an idle stream holds no connection

    def generate() -> Iterator[str]:
        try:
            start = time.monotonic()
            yield f"retry: {retry_ms}\n\n" + read(first)
            deadline, next_beat = start + max_seconds, start + heartbeat
            while True:
                now = time.monotonic()
                if now >= deadline:
                    return
                changes = subscription.wait(min(deadline, next_beat) - now)
                out = read(functools.partial(on_change, changes)) if changes else ""
                now = time.monotonic()
                if now >= next_beat and now < deadline:
                    out += ": keep-alive\n\n"
                    if on_heartbeat is not None:
                        out += read(on_heartbeat)
                    next_beat = now + heartbeat
                if out:
                    yield out
        finally:
            subscription.close()

    response = Response(stream_with_context(generate()), mimetype="text/event-stream")
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Accel-Buffering"] = "no"  # a proxy that buffers would hold every event back
    return response
