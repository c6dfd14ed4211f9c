"""Scan mode benchmark: batches of scans through POST /admin/scans on a fresh PostgreSQL database.

    .venv/bin/python loadtests/scan_bench.py                          # 1,000-scan batches: 3 alone, then 10 in a row
    .venv/bin/python loadtests/scan_bench.py --batch 200 --sustained 3  # a quick look

Runs the real app in this process through Flask's test client (no HTTP server, so the figure is the app's and the
database's work), signed in as an operator, against a database it creates and drops on TEST_DATABASE_URL's server
(default postgresql://postgres@127.0.0.1:5432/postgres). Each scan moves a Booked shipment to Picked Up: its
status, event and queued email, and one audit row per batch, committed. Targets: one batch of 1,000 in under
2 s; sustained scanning at 1,000 status changes a second or more. Prints a Markdown table with the machine's
core count; raw output stays out of git (quote the table in a report under loadtests/results/).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

from sqlalchemy import text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_db import fresh_database  # noqa: E402

from app import create_app  # noqa: E402
from app.config import TestingConfig  # noqa: E402
from app.extensions import db  # noqa: E402

BATCH_TARGET_S = 2.0
RATE_TARGET = 1000.0
OPERATOR = ("bench-operator", "bench-operator-password-1")


def seed_booked(count: int) -> list[str]:
    """`count` Booked shipments with their first event, written in bulk (setup, not measured)."""
    from app.domain.timeutil import utcnow
    from app.domain.tracking_ids import new_tracking_id
    from app.models import Shipment, TrackingEvent

    ids: set[str] = set(db.session.scalars(db.select(Shipment.tracking_id)))
    fresh: list[str] = []
    while len(fresh) < count:
        tid = new_tracking_id()
        if tid not in ids:
            ids.add(tid)
            fresh.append(tid)
    now = utcnow()
    connection = db.session.connection()
    rows = [{"tracking_id": tid, "sender_name": f"Sender {n}", "receiver_name": f"Receiver {n}",
             "mobile": f"+9198{n % 100_000_000:08d}", "email": f"r{n}@example.com", "destination": "Kochi 682016",
             "status": "Booked", "created_at": now, "updated_at": now} for n, tid in enumerate(fresh)]
    shipment_ids = connection.execute(
        Shipment.__table__.insert().returning(Shipment.__table__.c.id, sort_by_parameter_order=True), rows
    ).scalars().all()
    connection.execute(TrackingEvent.__table__.insert(), [
        {"shipment_id": sid, "status": "Booked", "location": "Origin Facility", "actor": "bench", "occurred_at": now}
        for sid in shipment_ids])
    db.session.commit()
    return fresh


def backend_cpu_seconds(pids: list[int]) -> float:
    """CPU time (user + system) the PostgreSQL backends serving this database have used, from /proc (the
    server runs on this machine); 0 where it cannot be read."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def backend_pids() -> list[int]:
    return list(db.session.scalars(text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=1000, help="scans per request (at most 1,000)")
    parser.add_argument("--single", type=int, default=3, help="batches timed one by one")
    parser.add_argument("--sustained", type=int, default=10, help="batches sent back to back for the rate")
    parser.add_argument("--server", default=os.environ.get("TEST_DATABASE_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/postgres"))
    return parser.parse_args(argv)


def run(args: argparse.Namespace) -> dict:
    """Seed, sign in, time the batches; the figures as a dict (render() makes the report)."""
    url, drop = fresh_database(args.server, "waybill_scan_bench_")
    try:
        app = create_app(TestingConfig(url))
        with app.app_context():
            from flask_migrate import upgrade

            from app.services.staff.users import create_user
            upgrade()
            create_user(*OPERATOR, "operator")
            db.session.commit()
            tracking_ids = seed_booked(args.batch * (args.single + args.sustained))
        client = app.test_client()
        login = client.post("/login", json={"username": OPERATOR[0], "password": OPERATOR[1]})
        headers = {"X-CSRFToken": login.get_json()["csrf_token"]}
        batches = [tracking_ids[i:i + args.batch] for i in range(0, len(tracking_ids), args.batch)]

        def send(batch: list[str]) -> None:
            response = client.post("/admin/scans", headers=headers, json={
                "status": "Picked Up", "location": "Kochi Hub", "tracking_ids": batch})
            assert response.status_code == 200, response.get_data(as_text=True)[:500]
            assert response.get_json()["accepted"] == len(batch), response.get_json()["results"][:3]

        singles = []
        for batch in batches[:args.single]:
            started = time.perf_counter()
            send(batch)
            singles.append(time.perf_counter() - started)
        with app.app_context():
            pids = backend_pids()
        db_cpu, app_cpu, load = backend_cpu_seconds(pids), time.process_time(), os.getloadavg()[0]
        started = time.perf_counter()
        for batch in batches[args.single:]:
            send(batch)
        sustained_s = time.perf_counter() - started
        app_cpu, db_cpu = time.process_time() - app_cpu, backend_cpu_seconds(pids) - db_cpu
        load = max(load, os.getloadavg()[0])
        with app.app_context():
            counts = {name: db.session.scalar(text(query)) for name, query in (
                ("changes", "SELECT count(*) FROM tracking_events WHERE status = 'Picked Up'"),
                ("emails", "SELECT count(*) FROM notifications"),
                ("audit", "SELECT count(*) FROM audit_entries WHERE action = 'scan_batch'"))}
            db.session.remove()
            db.engine.dispose()
    finally:
        drop()
    sustained_changes = args.batch * args.sustained
    return {"cores": os.cpu_count(), "batch": args.batch, "singles": singles, "sustained_batches": args.sustained,
            "sustained_s": sustained_s, "sustained_rate": sustained_changes / sustained_s if sustained_s else 0.0,
            "app_cpu_s": app_cpu, "db_cpu_s": db_cpu, "load_average": load, **counts}


def render(result: dict) -> str:
    singles = result["singles"]
    sustained = result["batch"] * result["sustained_batches"]
    cpu_ms = 1000 * (result["app_cpu_s"] + result["db_cpu_s"]) / max(1, sustained)
    lines = [f"## Scan mode, batches of {result['batch']:,} ({result['cores']} cores, PostgreSQL, in-process)", "",
             "| batch | seconds | status changes/s |", "| --- | --- | --- |"]
    lines += [f"| {n} | {s:.2f} | {result['batch'] / s:,.0f} |" for n, s in enumerate(singles, 1)]
    median = statistics.median(singles) if singles else 0.0
    lines += ["", f"- one batch: median {median:.2f} s (target < {BATCH_TARGET_S:g} s for 1,000: "
              f"{'met' if singles and median < BATCH_TARGET_S else 'not met'})",
              f"- sustained: {result['sustained_batches']} batches back to back, "
              f"{result['batch'] * result['sustained_batches']:,} changes in {result['sustained_s']:.2f} s = "
              f"**{result['sustained_rate']:,.0f} status changes/s** (target >= {RATE_TARGET:,.0f}: "
              f"{'met' if result['sustained_rate'] >= RATE_TARGET else 'not met'})",
              f"- CPU for those {sustained:,} changes: app (this process) {result['app_cpu_s']:.2f} s, PostgreSQL "
              f"backends {result['db_cpu_s']:.2f} s = {cpu_ms:.2f} ms per change; "
              f"machine load average up to {result['load_average']:.1f} on {result['cores']} cores "
              "(other work shares the machine)",
              f"- written in all: {result['changes']:,} events, {result['emails']:,} queued emails (booking emails "
              f"not seeded), {result['audit']:,} scan_batch audit rows (one per batch)"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if not 1 <= args.batch <= 1000:
        raise SystemExit("--batch must be from 1 to 1000")
    print(render(run(args)))


if __name__ == "__main__":
    main()
