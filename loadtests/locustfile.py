"""The paper's mixed scenario: customers book, track and search; operators log in and move shipments along;
a health probe like the load balancer's.

    locust -f loadtests/locustfile.py --host http://127.0.0.1:8000     (after loadtests/bench.sh wrote the sample)

Think times: a customer waits 0.25–0.75 s between requests (0.5 s on average). With the paper's 142 ms responses
that is the ~0.65 s per request that its ~310 requests/s from 200 users imply, so at each level we offer the load
the paper's clients offered. WAYBILL_THINK_SCALE stretches them (e.g. 10 for human-paced browsing).

Statistics names are route templates ("GET /track/[id]"), so each endpoint is one row. A 409 from two
operators moving the same shipment at once is a legitimate answer, reported as its own row
"POST /update/[id] (409 race)" and not as a failure.
"""
from __future__ import annotations

import random
from collections import deque
from contextlib import suppress

from locust import FastHttpUser, between, constant_pacing, task
from sample import (
    booking,
    choose_next_status,
    load_sample,
    location_for,
    search_path,
    think_scale,
)

JSON = {"Accept": "application/json"}
HTML = {"Accept": "text/html,application/xhtml+xml"}
ACTIVE_POOL_MAX = 2000


class _Shared:
    """Shipments that can still move, shared by the users of this Locust process: the seeded ones that are not
    final, and every shipment a customer books during the run (operators pick those up, as a depot would)."""

    active: deque[str] | None = None

    @classmethod
    def pool(cls) -> deque[str]:
        if cls.active is None:
            cls.active = deque(load_sample()["active_tracking_ids"], maxlen=ACTIVE_POOL_MAX)
        return cls.active


def _think(low: float, high: float):
    scale = think_scale()
    return between(low * scale, high * scale)


class CustomerUser(FastHttpUser):
    """The public: track by ID (most of the traffic), search by mobile, book a shipment."""

    weight = 10
    wait_time = _think(0.25, 0.75)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.sample = load_sample()

    @task(8)
    def track(self) -> None:
        tracking_id = self.rng.choice(self.sample["tracking_ids"])
        if self.rng.random() < 0.2:
            tracking_id = f" {tracking_id.lower()} "  # typed by hand: any case, stray spaces
        self.client.get(f"/track/{tracking_id}", name="GET /track/[id]", headers=JSON)

    @task(1)
    def track_page(self) -> None:
        tracking_id = self.rng.choice(self.sample["tracking_ids"])
        self.client.get(f"/track/{tracking_id}", name="GET /track/[id] (page)", headers=HTML)

    @task(3)
    def search(self) -> None:
        mobile = self.rng.choice(self.sample["mobiles"])
        self.client.get(search_path(mobile, self.rng), name="GET /search/[mobile]", headers=JSON)

    @task(2)
    def create(self) -> None:
        with self.client.post("/create", json=booking(self.rng), name="POST /create", headers=JSON,
                              catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {(response.text or '')[:200]}")
                return
            _Shared.pool().append(response.json()["tracking_id"])


class OperatorUser(FastHttpUser):
    """Depot staff: log in once (JSON), then look a shipment up and record its next status."""

    weight = 1
    wait_time = _think(0.5, 1.5)

    def on_start(self) -> None:
        self.rng = random.Random()
        credentials = load_sample()["operator"]
        self.csrf_token = None
        with self.client.post("/login", json=credentials, name="POST /login", headers=JSON,
                              catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"login {response.status_code}: {(response.text or '')[:200]}")
                return
            self.csrf_token = response.json()["csrf_token"]

    @task
    def move_a_shipment(self) -> None:
        if self.csrf_token is None:
            return
        pool = _Shared.pool()
        if not pool:
            return
        tracking_id = pool[self.rng.randrange(len(pool))]
        with self.client.get(f"/track/{tracking_id}", name="GET /track/[id]", headers=JSON,
                             catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"{response.status_code}: {(response.text or '')[:200]}")
                return
            shipment = response.json()
        status = choose_next_status(shipment["status"], shipment["events"], self.rng)
        if status is None:  # final now: nothing more to do with it
            _discard(pool, tracking_id)
            return
        body = {"status": status, "location": location_for(status, self.rng), "note": "load test"}
        with self.client.post(f"/update/{tracking_id}", json=body, name="POST /update/[id]",
                              headers={**JSON, "X-CSRFToken": self.csrf_token}, catch_response=True) as response:
            if response.status_code == 200:
                response.success()
            elif response.status_code == 409:
                # Another operator moved it first: a correct answer, counted on its own row.
                response.request_meta["name"] = "POST /update/[id] (409 race)"
                response.success()
            else:
                response.failure(f"{response.status_code}: {(response.text or '')[:200]}")


class HealthUser(FastHttpUser):
    """The load balancer's and the container's health checks: a steady trickle of GET /healthz."""

    fixed_count = 2
    wait_time = constant_pacing(1)

    @task
    def healthz(self) -> None:
        self.client.get("/healthz", name="GET /healthz", headers=JSON)


def _discard(pool: deque[str], tracking_id: str) -> None:
    with suppress(ValueError):  # another operator's user dropped it already
        pool.remove(tracking_id)
