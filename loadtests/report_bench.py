"""The operations report's benchmark: a 92-day report over --parcels parcels (about 7 events each), on a fresh
PostgreSQL database and on a SQLite file.

    .venv/bin/python loadtests/report_bench.py                    # 50,000 parcels, both databases
    .venv/bin/python loadtests/report_bench.py --parcels 5000 --only sqlite

Runs in this process (no HTTP server: the figure is the report's and the database's work). Seeds, in bulk and not
measured, --parcels parcels booked evenly over the 92 days before --last (and as many again in the 92 days
before those, which the report must skip): each is picked up, scanned in at one or two hubs, goes out for
delivery and is delivered by one of --couriers couriers (three in ten cash on delivery, collected), or fails an
attempt first (one in seven), or goes back to its sender after one (one in twenty). Then times, --runs times each,
the service (operations_report) for 92 days and for 7, and GET /admin/reports as JSON and as the page for 92
days. Prints a Markdown table with the machine's core count; raw output stays out of git.
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_db import fresh_database  # noqa: E402

from app import create_app  # noqa: E402
from app.config import TestingConfig  # noqa: E402
from app.extensions import db  # noqa: E402

TZ = "Asia/Kolkata"
ADMIN = ("bench-admin", "bench-admin-password-1")
HUBS = ("Kochi Hub", "Ernakulam Hub", "Thrissur Hub", "Kozhikode Hub")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parcels", type=int, default=50_000, help="parcels booked in the 92 days")
    parser.add_argument("--couriers", type=int, default=60)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--last", type=date.fromisoformat, default=date(2026, 6, 30), help="the report's last day")
    parser.add_argument("--only", choices=("postgresql", "sqlite"))
    parser.add_argument("--server", default=os.environ.get("TEST_DATABASE_URL",
                                                           "postgresql://postgres@127.0.0.1:5432/postgres"))
    return parser.parse_args(argv)


def timelines(parcels: int, first: date, rng: random.Random, couriers: list[str]):
    """(shipment values, events, collection) for `parcels` parcels booked evenly from `first` for 92 days."""
    from app.domain.timeutil import local_day_start

    start = local_day_start(first, TZ)
    for n in range(parcels):
        booked = start + timedelta(seconds=rng.randrange(92 * 86400))
        courier = rng.choice(couriers)
        hubs = rng.sample(HUBS, rng.choice((1, 2)))
        t = booked
        events = [("Booked", "Origin Facility", "customer", t)]
        t += timedelta(hours=rng.uniform(1, 4))
        events.append(("Picked Up", "Origin Facility", "operator", t))
        for hub in hubs:
            t += timedelta(hours=rng.uniform(3, 20))
            events.append(("In Transit", hub, "operator", t))
        t += timedelta(hours=rng.uniform(4, 30))
        events.append(("Out for Delivery", hubs[-1], courier, t))
        fate = rng.random()
        if fate < 0.05 + 1 / 7:
            t += timedelta(hours=rng.uniform(1, 6))
            events.append(("Delivery Attempted", "Door", courier, t))
            if fate < 0.05:
                t += timedelta(hours=rng.uniform(12, 30))
                events.append(("RTO Initiated", hubs[-1], "operator", t))
                yield booked, events, None
                continue
            t += timedelta(hours=rng.uniform(14, 26))
            events.append(("Out for Delivery", hubs[-1], courier, t))
        t += timedelta(hours=rng.uniform(0.5, 6))
        events.append(("Delivered", "Door", courier, t))
        cod = Decimal(rng.randrange(100, 5000)) if n % 10 < 3 else None
        yield booked, events, cod


def seed(parcels: int, couriers: int, first: date) -> None:
    """The parcels of the 92 days from `first`, and as many in the 92 days before (setup, not measured)."""
    from app.domain.timeutil import local_day_start
    from app.models import CodCollection, Shipment, TrackingEvent, User
    from app.services.field.couriers import CourierFields
    from app.services.staff.users import create_user

    names = [f"courier{n:03d}" for n in range(couriers)]
    for name in names:
        create_user(name, "bench-courier-password-1", "courier", courier=CourierFields(vehicle="two_wheeler"))
    db.session.commit()
    ids = dict(db.session.execute(db.select(User.username, User.id)).all())
    rng = random.Random(7)
    connection = db.session.connection()
    shipments, events_table, cod_table = Shipment.__table__, TrackingEvent.__table__, CodCollection.__table__
    serial = 0
    for block_first in (first - timedelta(days=92), first):
        batch = list(timelines(parcels, block_first, rng, names))
        for chunk_at in range(0, len(batch), 5000):
            chunk = batch[chunk_at:chunk_at + 5000]
            rows = []
            for booked, events, cod in chunk:
                serial += 1
                rows.append({"tracking_id": f"{serial:08X}", "sender_name": "Sender", "receiver_name": "Receiver",
                             "mobile": "+919876543210", "destination": "Kochi 682016", "status": events[-1][0],
                             "created_at": booked, "updated_at": events[-1][3],
                             "promised_by": local_day_start((booked + timedelta(days=3)).date(), TZ),
                             "payment": "cod" if cod else "prepaid", "cod_amount": cod})
            shipment_ids = connection.execute(
                shipments.insert().returning(shipments.c.id, sort_by_parameter_order=True), rows).scalars().all()
            event_rows = [{"shipment_id": sid, "status": s, "location": loc, "actor": actor, "occurred_at": at}
                          for sid, (_b, events, _c) in zip(shipment_ids, chunk, strict=True)
                          for s, loc, actor, at in events]
            event_ids = connection.execute(
                events_table.insert().returning(events_table.c.id, sort_by_parameter_order=True),
                event_rows).scalars().all()
            collections, position = [], 0
            for sid, (_b, events, cod) in zip(shipment_ids, chunk, strict=True):
                position += len(events)
                if cod is not None:
                    delivered = events[-1]
                    collections.append({"shipment_id": sid, "event_id": event_ids[position - 1],
                                        "courier_id": ids[delivered[2]], "expected": cod, "collected": cod,
                                        "method": "cash", "collected_at": delivered[3]})
            if collections:
                connection.execute(cod_table.insert(), collections)
    db.session.commit()


def server_cpu_seconds() -> float:
    """CPU time (user + system) the PostgreSQL backends serving this database have used, from /proc (the server
    runs on this machine); 0 on SQLite or where it cannot be read."""
    if db.engine.dialect.name != "postgresql":
        return 0.0
    total = 0.0
    for pid in db.session.scalars(db.text("SELECT pid FROM pg_stat_activity WHERE datname = current_database()")):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def timed(runs: int, action) -> tuple[float, float]:
    """The median wall time of `runs` runs, and the median CPU time they took: this process's and the database
    server's (the wall time also holds other processes' work on a busy machine)."""
    walls, cpus = [], []
    for _ in range(runs):
        server = server_cpu_seconds()
        wall, cpu = time.perf_counter(), time.process_time()
        action()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu + server_cpu_seconds() - server)
    return statistics.median(walls), statistics.median(cpus)


def run(url: str, args: argparse.Namespace) -> dict:
    from app.models import TrackingEvent
    from app.services.operations.reports import operations_report, report_range
    from app.services.staff.users import create_user

    app = create_app(TestingConfig(url))
    first = args.last - timedelta(days=91)
    with app.app_context():
        from flask_migrate import upgrade

        upgrade()
        create_user(*ADMIN, "admin")
        db.session.commit()
        began = time.perf_counter()
        seed(args.parcels, args.couriers, first)
        seeded = time.perf_counter() - began
        events = db.session.scalar(db.select(db.func.count()).select_from(TrackingEvent))
        quarter = report_range(first, args.last, TZ)
        week = report_range(args.last - timedelta(days=6), args.last, TZ)
        figures = {"events": events, "seed_s": seeded,
                   "service_92": timed(args.runs, lambda: operations_report(quarter)),
                   "service_7": timed(args.runs, lambda: operations_report(week))}
        report = operations_report(quarter)
        figures["delivered"] = sum(day.delivered for day in report.days)
        db.session.rollback()
    client = app.test_client()
    client.post("/login", json={"username": ADMIN[0], "password": ADMIN[1]})
    query = {"from": first.isoformat(), "to": args.last.isoformat()}
    with app.app_context():  # for server_cpu_seconds: each request has its own context and connection
        figures["json_92"] = timed(args.runs, lambda: client.get("/admin/reports", query_string=query))
        figures["page_92"] = timed(args.runs, lambda: client.get("/admin/reports", query_string=query,
                                                                 headers={"Accept": "text/html"}))
        db.session.rollback()
        db.engine.dispose()
    return figures


def render(results: dict[str, dict], args: argparse.Namespace) -> str:
    lines = [f"Operations report, {args.parcels:,} parcels in the 92 days (and as many before them), "
             f"{args.couriers} couriers; median of {args.runs} runs, wall time (CPU: this process and the "
             f"database server); "
             f"{os.cpu_count()} cores.", "",
             "| database | events in the tables | 92 days (service) | 7 days (service) | 92 days, JSON | "
             "92 days, page |", "| --- | --- | --- | --- | --- | --- |"]
    for name, f in results.items():
        cells = " | ".join(f"{f[key][0]:.2f} s ({f[key][1]:.2f} s)"
                           for key in ("service_92", "service_7", "json_92", "page_92"))
        lines.append(f"| {name} | {f['events']:,} | {cells} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = {}
    if args.only in (None, "postgresql"):
        url, drop = fresh_database(args.server, "waybill_report_bench_")
        try:
            results["PostgreSQL"] = run(url, args)
        finally:
            drop()
    if args.only in (None, "sqlite"):
        with tempfile.TemporaryDirectory() as folder:
            results["SQLite"] = run(f"sqlite:///{folder}/report.db", args)
    print(render(results, args))


if __name__ == "__main__":
    main()
