"""A Locust plugin for the tests: end the run as soon as every request name in WAYBILL_UNTIL ("|" between
names) has been answered WAYBILL_UNTIL_COUNT times (default 3).

The load tests assert what happened (each endpoint was called, nothing failed), not how much of it fits in a few
seconds: on a busy shared machine 3 s were sometimes not enough for four users to finish a single request. `-t`
stays as an upper bound only. Loaded next to a locustfile: `-f loadtests/probes.py,tests/deploy/locust_until.py`.
"""
from __future__ import annotations

import os
from collections import Counter

import gevent
from locust import events

_expected = {name for name in os.environ.get("WAYBILL_UNTIL", "").split("|") if name}
_needed = int(os.environ.get("WAYBILL_UNTIL_COUNT", "3") or 3)
_answered: Counter[str] = Counter()
_environment = None


@events.init.add_listener
def _remember(environment, **_kwargs) -> None:
    global _environment
    _environment = environment


@events.request.add_listener
def _count(name: str, **_kwargs) -> None:
    _answered[name] += 1
    if _expected and _environment is not None and all(_answered[n] >= _needed for n in _expected):
        _expected.clear()
        gevent.spawn(_environment.runner.quit)
