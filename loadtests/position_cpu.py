"""The app's CPU for one batch of positions (POST /courier/locations), in-process, on a fresh PostgreSQL database.

    .venv/bin/python loadtests/position_cpu.py                    # 300 batches of 50 points
    .venv/bin/python loadtests/position_cpu.py --profile          # and cProfile's top 30 (cumulative, own time)
    .venv/bin/python loadtests/position_cpu.py --batches 100 --runs 3

Runs the real app through Flask's test client (no HTTP server), configured as the field benchmark serves it
(loadtests/field_bench.py: WAYBILL_ENV=production, rate limits off, the outbox worker and job runner not running,
Prometheus in multiprocess mode as under gunicorn.conf.py), against a database it creates, migrates and drops on
TEST_DATABASE_URL's server (default postgresql://postgres@127.0.0.1:5432/postgres). One courier on a
round-the-clock shift, signed in once, sends batches of --points points 6 s apart in time (all kept, as
loadtests/field_probes.py sends them), after --warmup batches that are not counted.

Per batch it reports time.process_time() (this process's CPU: the app, SQLAlchemy, the driver and the test
client; PostgreSQL is another process, reported apart from /proc) and the wall time. CPU time is the figure to
compare on a shared machine: the wall time waits for PostgreSQL and for whatever else runs. The request bodies
are encoded before the clock starts. Bounded: every point sent must fit in the
last 7 days, 6 s apart (about 2,000 batches of 50 in all).
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import secrets
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

LOADTESTS = Path(__file__).resolve().parent
ROOT = LOADTESTS.parent
sys.path.insert(0, str(LOADTESTS))
sys.path.insert(0, str(ROOT))

from bench_db import fresh_database  # noqa: E402

TOP = int(os.environ.get("POSITION_CPU_TOP", "30"))
USERNAME = "bench-courier"
PASSWORD = secrets.token_urlsafe(12)
SPACING = timedelta(seconds=6)
# Every point must lie within the 7 days the app believes (app.domain.field): the walk starts just inside them,
# and the whole session's points must fit before now.
WINDOW = timedelta(days=6, hours=22)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, default=300, help="batches measured per run")
    parser.add_argument("--points", type=int, default=50, help="points per batch")
    parser.add_argument("--warmup", type=int, default=20, help="batches sent first, not counted")
    parser.add_argument("--runs", type=int, default=1, help="runs of --batches, one after another")
    parser.add_argument("--profile", action="store_true", help="cProfile one more run of --batches: top 30")
    parser.add_argument("--server", default=os.environ.get("TEST_DATABASE_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = parser.parse_args(argv)
    if args.batches < 1 or not 1 <= args.points <= 500 or not 1 <= args.runs <= 10 or args.warmup < 0:
        parser.error("--batches 1 or more, --points 1 to 500, --runs 1 to 10, --warmup 0 or more")
    sent = (args.warmup + args.batches * (args.runs + args.profile)) * args.points
    if sent * SPACING > WINDOW:
        parser.error(f"{sent:,} points {SPACING.seconds} s apart do not fit in the last 7 days: fewer batches")
    return args


def production_environment(url: str) -> None:
    """The environment field_bench.py gives Gunicorn (before the app is imported: Prometheus reads its
    multiprocess directory at import)."""
    os.environ.update({
        "DATABASE_URL": url, "WAYBILL_ENV": "production", "SECRET_KEY": secrets.token_hex(32),
        "SESSION_COOKIE_SECURE": "false", "LOG_LEVEL": "WARNING", "MAIL_BACKEND": "console",
        "RATELIMIT_ENABLED": "false", "ADMIN_USERNAME": "", "ADMIN_PASSWORD": "", "JOBS_IN_WEB": "false",
        "NOTIFY_WORKER_IN_WEB": "false", "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
        "PROMETHEUS_MULTIPROC_DIR": tempfile.mkdtemp(prefix="waybill-position-cpu-"),
    })


def prepare(url: str):
    """Migrate (as the tests do), then the app as served and a signed-in courier: (app, client, headers)."""
    from datetime import time as clock

    from flask_migrate import upgrade

    from app import create_app
    from app.config import TestingConfig, config_from_env
    from app.extensions import db
    from app.models import CourierProfile
    from app.services.field.couriers import CourierFields
    from app.services.staff.users import create_user

    migrating = create_app(TestingConfig(url))
    with migrating.app_context():
        upgrade()
        user = create_user(USERNAME, PASSWORD, "courier", courier=CourierFields(vehicle="two_wheeler"))
        profile = db.session.get(CourierProfile, user.id)
        profile.shift_start, profile.shift_end = clock(0), clock(0)  # round the clock, as field_bench.py
        db.session.commit()
        db.session.remove()
        db.engine.dispose()
    app = create_app(config_from_env())
    client = app.test_client()
    login = client.post("/login", json={"username": USERNAME, "password": PASSWORD},
                        headers={"Accept": "application/json"})
    if login.status_code != 200:
        raise RuntimeError(f"sign-in failed: {login.status_code} {login.get_data(as_text=True)[:300]}")
    return app, client, {"Accept": "application/json", "X-CSRFToken": login.get_json()["csrf_token"]}


class Batches:
    """A courier walking east, a point every 6 s, from almost 7 days back (all kept: none too close)."""

    def __init__(self, points: int) -> None:
        self.points = points
        self.at = datetime.now(UTC) - WINDOW
        self.lat, self.lon = 12.95, 77.55

    def next_body(self) -> bytes:
        points = []
        for n in range(self.points):
            self.at += SPACING
            self.lon += 0.0004
            points.append({"lat": round(self.lat, 6), "lon": round(self.lon, 6), "accuracy": round(5 + n % 20, 1),
                           "at": self.at.isoformat(timespec="seconds"), "speed": 7.2, "heading": 90,
                           "battery": 0.8})
        return json.dumps({"points": points}).encode()


def send_all(client, headers: dict, bodies: list[bytes], points: int) -> tuple[list[float], list[float]]:
    """Post each body; (CPU seconds, wall seconds) per batch."""
    cpu, wall = [], []
    for body in bodies:
        c0, w0 = time.process_time(), time.perf_counter()
        response = client.post("/courier/locations", data=body, content_type="application/json", headers=headers)
        w1, c1 = time.perf_counter(), time.process_time()
        if response.status_code != 202 or response.get_json() != {"accepted": points, "dropped": 0}:
            raise RuntimeError(f"batch refused: {response.status_code} {response.get_data(as_text=True)[:300]}")
        cpu.append(c1 - c0)
        wall.append(w1 - w0)
    return cpu, wall


def backend_cpu_seconds(app) -> float:
    """CPU time the PostgreSQL backends of this database have used so far (from /proc; 0 where unreadable)."""
    from sqlalchemy import text

    from app.extensions import db

    with app.app_context():
        pids = list(db.session.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")))
        db.session.remove()
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def profile_report(profiler: cProfile.Profile, batches: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    out.write(f"--- cProfile (CPU time), {batches} batches: top 30 by cumulative time ---\n")
    stats.sort_stats("cumulative").print_stats(TOP)
    out.write("--- top 30 by own time ---\n")
    stats.sort_stats("tottime").print_stats(TOP)
    return out.getvalue()


def ms(values: list[float]) -> str:
    ordered = sorted(values)
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return f"median {1000 * statistics.median(values):.2f}, mean {1000 * statistics.fmean(values):.2f}, " \
           f"p90 {1000 * p90:.2f} ms"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    url, drop = fresh_database(args.server, "waybill_position_cpu_")
    production_environment(url)
    try:
        app, client, headers = prepare(url)
        batches = Batches(args.points)
        send_all(client, headers, [batches.next_body() for _ in range(args.warmup)], args.points)
        print(f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f}; {args.points} points a batch, "
              f"{args.batches} batches a run after {args.warmup} not counted")
        for run in range(1, args.runs + 1):
            bodies = [batches.next_body() for _ in range(args.batches)]
            database_before = backend_cpu_seconds(app)
            cpu, wall = send_all(client, headers, bodies, args.points)
            database = backend_cpu_seconds(app) - database_before
            print(f"run {run}: app CPU a batch {ms(cpu)}; wall {ms(wall)}; PostgreSQL CPU "
                  f"{1000 * database / args.batches:.2f} ms a batch (mean)")
        if args.profile:
            bodies = [batches.next_body() for _ in range(args.batches)]
            profiler = cProfile.Profile(time.process_time)  # CPU, not the waits for PostgreSQL
            profiler.enable()
            send_all(client, headers, bodies, args.points)
            profiler.disable()
            print(profile_report(profiler, args.batches))
        from app.extensions import db
        from app.services.shipments.tracking_cache import stop_tracking_cache

        stop_tracking_cache(app)
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    finally:
        drop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
