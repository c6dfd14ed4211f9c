"""A throwaway PostgreSQL database for the in-process benchmarks (scan_bench.py, bulk_bench.py)."""
from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url


def fresh_database(server_url: str, prefix: str) -> tuple[str, Callable[[], None]]:
    """Create an empty database named `prefix` + a random suffix on the server at `server_url`: its URL, and a
    function that drops it (whoever is still connected)."""
    # psycopg2, the app's driver: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg 3, which is not installed.
    url = make_url(server_url.replace("postgres://", "postgresql://", 1)).set(drivername="postgresql+psycopg2")
    name = f"{prefix}{uuid.uuid4().hex[:8]}"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False), drop
