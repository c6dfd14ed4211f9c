"""Server-side prepared statements on PostgreSQL, for the few statements that run on every request of a busy path.

psycopg2 sends every statement as text, so PostgreSQL parses, analyses and plans it each time. For the booking
statement (four INSERTs chained by CTEs) that was about half of the database's work per booking: measured with
pgbench on this machine, 0.95 ms a booking as text, 0.41 ms prepared. A `PreparedStatement` is compiled by
SQLAlchemy once, sent as `PREPARE` the first time each pooled connection runs it (the pool record remembers; a
replaced connection starts without it), and run as `EXECUTE name (…)` with only the values.

A prepared statement belongs to the database session, not to a transaction: it survives a rollback, and
PostgreSQL re-plans it by itself after a migration changes a table it uses. Values are bound as psycopg2 adapts
them (str, int, bool, None, timezone-aware datetime); the statement must not hold expanding (IN-list)
parameters.
"""
from __future__ import annotations

import re
import threading
from typing import Any

from sqlalchemy.dialects.postgresql import psycopg as pg_psycopg
from sqlalchemy.engine import Connection, CursorResult
from sqlalchemy.sql import ClauseElement

_PARAMETER = re.compile(r"%\((\w+)\)s")
# Compiled as for psycopg 3, whose SQL casts every bound value to its column type (`$3::VARCHAR`): a prepared
# statement's parameters get their types from the text, and an uncast one in a SELECT list would be text. Only
# the SQL is taken from it; the driver that runs it is the app's (psycopg2).
_CASTING_DIALECT = pg_psycopg.dialect()


class PreparedStatement:
    """`statement`, prepared under `name` on each PostgreSQL connection that runs it."""

    def __init__(self, name: str, statement: ClauseElement) -> None:
        if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):
            raise ValueError(f"not a statement name: {name!r}")
        self.name = name
        self.statement = statement
        self._flag = f"waybill_prepared_{name}"
        self._lock = threading.Lock()
        self._compiled: tuple[Any, str, str] | None = None

    def _compile(self) -> tuple[Any, str, str]:
        with self._lock:
            if self._compiled is None:
                compiled = self.statement.compile(dialect=_CASTING_DIALECT)
                if "POSTCOMPILE" in compiled.string:
                    raise ValueError(f"{self.name}: expanding parameters cannot be prepared")
                names = list(dict.fromkeys(_PARAMETER.findall(compiled.string)))
                position = {name: f"${index}" for index, name in enumerate(names, start=1)}
                # SQLAlchemy hands psycopg2 an empty parameter set with it, so a literal %% stays doubled.
                body = _PARAMETER.sub(lambda m: position[m.group(1)], compiled.string)
                run = f"EXECUTE {self.name} ({', '.join(f'%({name})s' for name in names)})"
                self._compiled = (compiled, f"PREPARE {self.name} AS {body}", run)
            return self._compiled

    def execute(self, connection: Connection, values: dict[str, Any]) -> CursorResult:
        """Run the statement on `connection` (PostgreSQL) with `values` for its bound parameters (those with
        defaults, such as literals SQLAlchemy bound, or a `callable_`, may be left out)."""
        compiled, prepare, run = self._compile()
        record = connection.connection  # the pooled DBAPI connection: its .info lives as long as it does
        if not record.info.get(self._flag):
            connection.exec_driver_sql(prepare)
            record.info[self._flag] = True
        return connection.exec_driver_sql(run, dict(compiled.construct_params(values)))
