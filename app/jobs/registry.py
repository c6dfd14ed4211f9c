"""The periodic jobs: a name, how often a process looks (from the config), and what it runs.

A job's `run(now)` does its work in the app context and in the runner's transaction: the runner commits when it
returns and rolls back when it raises. It returns a few words on what it did, or None when nothing was due. It
may commit on its own (a long job in batches): the runner's lock lasts until it returns, not until a commit.
A job that keeps each piece of its work to one process itself (rows claimed under a lease) says
`exclusive=False`: no lock is taken, so every process may work at it side by side.
"""
from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from app.jobs import alerts, dispatch, estimates, geocode, locations, timers
from app.services.shipments.estimates import REFRESH_LOCK_KEY

# The high half of every job's PostgreSQL advisory lock key ("WAYB"); the low half is the CRC-32 of its name,
# the same in every process (Python's hash() is not).
LOCK_NAMESPACE = 0x57415942


def lock_key(name: str) -> int:
    """The advisory lock key of the job called `name` (a positive bigint)."""
    return (LOCK_NAMESPACE << 32) | zlib.crc32(name.encode())


@dataclass(frozen=True)
class Every:
    """How often a process looks: the config setting `setting`, in seconds (0 or less: the job is off), capped at
    `at_most` seconds."""

    setting: str
    at_most: float | None = None

    def seconds(self, config: Mapping[str, Any]) -> float:
        seconds = float(config.get(self.setting) or 0)
        if seconds > 0 and self.at_most is not None:
            seconds = min(seconds, self.at_most)
        return seconds


@dataclass(frozen=True)
class Job:
    name: str
    every: Every
    run: Callable[[datetime], str | None]
    lock_key: int = field(default=0)  # 0: derived from the name
    exclusive: bool = True  # False: processes may run it at once (it claims its own work under leases)

    def __post_init__(self) -> None:
        if not self.lock_key:
            object.__setattr__(self, "lock_key", lock_key(self.name))

    def interval(self, config: Mapping[str, Any]) -> float:
        """Seconds between two looks in one process; 0 or less: the job is off."""
        return self.every.seconds(config)

    @property
    def summary(self) -> str:
        """The first line of what the job's function says it does."""
        return ((self.run.__doc__ or "").strip().splitlines() or [""])[0]


def check_jobs(jobs: Iterable[Job]) -> tuple[Job, ...]:
    """`jobs` as a tuple, refused when two share a name or a lock key (they would exclude each other)."""
    jobs = tuple(jobs)
    for attribute in ("name", "lock_key"):
        values = [getattr(job, attribute) for job in jobs]
        if len(set(values)) != len(values):
            raise ValueError(f"two jobs share a {attribute}: {values}")
    return jobs


# Scheduled work to come (dispatch windows, non-delivery timers) gets a line here.
JOBS: tuple[Job, ...] = check_jobs([
    # Looks at the table's age at most once a minute, rebuilds it once older than ESTIMATES_REFRESH_SECONDS. Its
    # lock key is the one the rebuild has always taken: during a rolling deploy, processes of the release before
    # (whose outbox worker rebuilt, under that key) and the runner never rebuild at once.
    Job("estimates.refresh", Every("ESTIMATES_REFRESH_SECONDS", at_most=60.0), estimates.refresh_when_stale,
        lock_key=REFRESH_LOCK_KEY),
    # What is due is in the table itself (positions older than LOCATION_RETENTION_DAYS): any process may look.
    Job("locations.purge", Every("LOCATION_PURGE_SECONDS"), locations.purge_old_positions),
    # Parcels still at their PIN code's centroid, from the geocoder cache and the GEOCODER (a few look-ups a run).
    Job("points.geocode", Every("GEOCODE_POLL_SECONDS"), geocode.refine_parcel_points),
    # The schedule's slots are made once by a unique key and each run is solved under a lease: every process may
    # plan at once, each a different zone's run.
    Job("dispatch.plan", Every("DISPATCH_POLL_SECONDS"), dispatch.plan_dispatch_runs, exclusive=False),
    # Reattempts, escalations, returns to origin: each step claimed row by row (SKIP LOCKED), so every process
    # may run them at once and each step is applied exactly once.
    Job("timers.run", Every("TIMERS_POLL_SECONDS"), timers.run_due_timers, exclusive=False),
    # One process at a time looks (its lock): alerts are unique per cause anyway, the digest's timing is not.
    Job("alerts.watch", Every("ALERTS_POLL_SECONDS"), alerts.watch_for_alerts),
])
