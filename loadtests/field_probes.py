"""The courier app under load (loadtests/field_bench.py runs these): couriers' phones sending positions in
batches, and the public tracking probe beside them.

    locust -f loadtests/field_probes.py LocationUser --headless -u 30 -r 30 -t 30s --host http://127.0.0.1:8000

Each LocationUser is one courier of the sample (signed in once, with its own session), sending batches of
WAYBILL_POINTS_PER_BATCH points (default 50) WAYBILL_BATCHES_PER_SECOND times a second (0: as fast as the server
answers). A courier's points are 6 s apart in time (the app keeps one per 5 s), walking east from a start near
its hub, and begin six and a half days back (the server takes points up to 7 days old): a batch covers 5 minutes,
so after about 1,870 batches a courier's points would reach the present and be refused. A courier can get there
in a 30 s capacity run (Gunicorn's workers do not share connections evenly: one courier was measured at 60
batches a second while the average was 12), so its clock starts over six and a half days back when it comes
within 10 minutes of now. Its older points are kept like any late batch (none is within 5 s of its latest).
"""
from __future__ import annotations

import itertools
import os
import random
from datetime import UTC, datetime, timedelta

from locust import FastHttpUser, constant, constant_throughput, task
from probes import TrackProbe  # noqa: F401 - run beside LocationUser in one locust process
from sample import load_sample

JSON = {"Accept": "application/json"}
POINTS = int(os.environ.get("WAYBILL_POINTS_PER_BATCH", "50"))
RATE = float(os.environ.get("WAYBILL_BATCHES_PER_SECOND", "2"))
_NEXT_COURIER = itertools.count()
START_BACK = timedelta(days=6, hours=12)
START_OVER_WITHIN = timedelta(minutes=10)


class LocationUser(FastHttpUser):
    wait_time = constant_throughput(RATE) if RATE > 0 else constant(0)
    fixed_count = int(os.environ.get("WAYBILL_LOCATION_USERS", "0")) or None

    def on_start(self) -> None:
        couriers = load_sample()["couriers"]
        courier = couriers[next(_NEXT_COURIER) % len(couriers)]
        self.rng = random.Random(courier["username"])
        self.lat, self.lon = 12.9 + self.rng.random() / 10, 77.5 + self.rng.random() / 10
        self.at = self._start()
        self.headers = JSON
        with self.client.post("/login", json=courier, name="POST /login", headers=JSON,
                              catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"login {response.status_code}: {(response.text or '')[:200]}")
                return
            self.headers = {**JSON, "X-CSRFToken": response.json()["csrf_token"]}

    def _start(self) -> datetime:
        return datetime.now(UTC) - START_BACK + timedelta(seconds=self.rng.randrange(600))

    def _points(self) -> list[dict]:
        if self.at > datetime.now(UTC) - START_OVER_WITHIN:
            self.at = self._start()
        points = []
        for _ in range(POINTS):
            self.at += timedelta(seconds=6)
            self.lon += 0.0004  # about 43 m east each time: always moving
            points.append({"lat": round(self.lat, 6), "lon": round(self.lon, 6),
                           "accuracy": round(5 + self.rng.random() * 20, 1),
                           "at": self.at.isoformat(timespec="seconds"), "speed": 7.2, "heading": 90,
                           "battery": 0.8})
        return points

    @task
    def send(self) -> None:
        with self.client.post("/courier/locations", json={"points": self._points()}, headers=self.headers,
                              name="POST /courier/locations", catch_response=True) as response:
            if response.status_code != 202:
                response.failure(f"{response.status_code}: {(response.text or '')[:200]}")
            elif response.json().get("accepted") != POINTS:
                response.failure(f"dropped points: {response.text[:200]}")
