"""Saturation probes: one endpoint at a time, no think time, so requests/s is what the server can do.

The benchmark runs each class alone for the same time at the same user count, in the same run, and divides
each endpoint's requests/s by GET /healthz's (the same app and server doing no database work: our ceiling on
this machine). In the mixed scenario the ratios would only say how often each task was picked.

    locust -f loadtests/probes.py TrackProbe --headless -u 200 -r 200 -t 30s --host http://127.0.0.1:8000
"""
from __future__ import annotations

import random

from locust import FastHttpUser, constant, task
from sample import booking, load_sample, search_path

JSON = {"Accept": "application/json"}


class _Probe(FastHttpUser):
    abstract = True
    wait_time = constant(0)

    def on_start(self) -> None:
        self.rng = random.Random()
        self.sample = load_sample()


class HealthzProbe(_Probe):
    @task
    def healthz(self) -> None:
        self.client.get("/healthz", name="GET /healthz", headers=JSON)


class TrackProbe(_Probe):
    @task
    def track(self) -> None:
        tracking_id = self.rng.choice(self.sample["tracking_ids"])
        self.client.get(f"/track/{tracking_id}", name="GET /track/[id]", headers=JSON)


class SearchProbe(_Probe):
    @task
    def search(self) -> None:
        mobile = self.rng.choice(self.sample["mobiles"])
        self.client.get(search_path(mobile, self.rng), name="GET /search/[mobile]", headers=JSON)


class CreateProbe(_Probe):
    @task
    def create(self) -> None:
        with self.client.post("/create", json=booking(self.rng), name="POST /create", headers=JSON,
                              catch_response=True) as response:
            if response.status_code != 201:
                response.failure(f"{response.status_code}: {(response.text or '')[:200]}")
