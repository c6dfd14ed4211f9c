"""Bulk operations benchmark: CSV import of bookings (and, where present, bulk scans) on a fresh PostgreSQL database.

    .venv/bin/python loadtests/bulk_bench.py                        # 10,000-row import, 3 runs
    .venv/bin/python loadtests/bulk_bench.py --rows 2000 --runs 1   # a quick look

Runs the real app in this process through Flask's test client (no HTTP server, so the figure is the app's and the
database's work), signed in as an operator, against a database it creates and drops on TEST_DATABASE_URL's server
(default postgresql://postgres@127.0.0.1:5432/postgres). Prints a Markdown table with the machine's core count;
raw output stays out of git (quote the table in docs/benchmark.md).
"""
from __future__ import annotations

import argparse
import io
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


def booking_csv(rows: int) -> bytes:
    lines = ["sender_name,receiver_name,mobile,email,destination"]
    lines += [f"Sender {n},Receiver {n},+91 9{n % 1_000_000_000:09d},r{n}@example.com,\"{n} MG Road, Kochi 682016\""
              for n in range(rows)]
    return ("\n".join(lines) + "\n").encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    server = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    url, drop = fresh_database(server, "waybill_bulk_bench_")
    try:
        app = create_app(TestingConfig(url))
        with app.app_context():
            from flask_migrate import upgrade

            from app.services.staff.users import create_user
            upgrade()
            create_user("bench-operator", "bench-operator-password-1", "operator")
            db.session.commit()
        client = app.test_client()
        login = client.post("/login", json={"username": "bench-operator", "password": "bench-operator-password-1"})
        token = login.get_json()["csrf_token"]
        data = booking_csv(args.rows)
        timings = []
        for _ in range(args.runs):
            started = time.perf_counter()
            response = client.post("/admin/imports", data={"file": (io.BytesIO(data), "bench.csv")},
                                   headers={"X-CSRFToken": token}, content_type="multipart/form-data")
            timings.append(time.perf_counter() - started)
            assert response.status_code == 201, response.get_data(as_text=True)[:500]
        with app.app_context():
            shipments = db.session.scalar(text("SELECT count(*) FROM shipments"))
            emails = db.session.scalar(text("SELECT count(*) FROM notifications"))
            db.session.remove()
            db.engine.dispose()
    finally:
        drop()
    print(f"## CSV import, {args.rows:,} rows ({os.cpu_count()} cores, PostgreSQL, in-process)\n")
    print("| run | seconds | rows/s |\n| --- | --- | --- |")
    for index, seconds in enumerate(timings, 1):
        print(f"| {index} | {seconds:.2f} | {args.rows / seconds:,.0f} |")
    print(f"\nmedian {statistics.median(timings):.2f} s (target < 20 s); {shipments:,} shipments and "
          f"{emails:,} queued emails written in all.")


if __name__ == "__main__":
    main()
