"""Promised dates: the table of days by service and zone pair, its saves, and a booking's `promised_by`.

Rules (the pure ones: app.domain.promises):
- The table holds a row per pair an admin set; a pair without a row is its default (DEFAULT_PROMISE_DAYS).
  `promise_rules` reads it in one query: a booking reads it once, a batch of bookings once.
- A save names the pairs it sets (any of them); every value is checked (0 to MAX_PROMISE_DAYS whole days) before
  any is written: ValidationError naming each bad one as `days.<service>.<zone>`, nothing written. Pairs whose
  days do not change are not written; the save is audited (`promise_rules_saved`, each pair's from and to) in the
  caller's transaction, and a save that changes nothing writes nothing.
- A booking's promise is its zone pair's days (the zone it was priced in: the sender's PIN code, else
  ORIGIN_PINCODE, against the destination's; no destination PIN code: `national`, as for its price) from its
  booking time, or the day an integrator gave (checked here, so every door that takes one checks it the same).
- A promise is kept: a later correction of the service or the PIN code does not move it (the customer was told
  that date), and a change of the table moves no booking made before it.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from flask import current_app
from sqlalchemy import select

from app.db.dialects import dialect_insert
from app.domain.promises import (
    DEFAULT_PROMISE_DAYS,
    PAIRS,
    end_of_local_day,
    given_day_problem,
    local_date,
    promise_days,
    promise_days_problem,
    promised_by,
)
from app.domain.timeutil import isoformat_z, utcnow
from app.errors import ValidationError
from app.extensions import db
from app.models import PromiseRule
from app.services.staff.audit import record_audit

PromiseRules = Mapping[tuple[str, str], int]
_RULES = PromiseRule.__table__


@dataclass(frozen=True)
class PromiseTable:
    """Every pair's days as they are now, each pair's default, and who last changed the table."""

    days: dict[tuple[str, str], int]
    updated_at: datetime | None
    updated_by: str | None

    def to_dict(self) -> dict:
        return {"days": _nested(self.days), "defaults": _nested(DEFAULT_PROMISE_DAYS),
                "updated_at": isoformat_z(self.updated_at), "updated_by": self.updated_by}


def _nested(days: Mapping[tuple[str, str], int]) -> dict[str, dict[str, int]]:
    nested: dict[str, dict[str, int]] = {}
    for service, zone in PAIRS:
        nested.setdefault(service, {})[zone] = days[(service, zone)]
    return nested


def promise_rules() -> dict[tuple[str, str], int]:
    """Days by (service, zone) for every pair: the table's rows over the defaults (one query)."""
    stored = {(row.service, row.zone): row.days
              for row in db.session.execute(select(PromiseRule.service, PromiseRule.zone, PromiseRule.days))}
    return {pair: promise_days(stored, *pair) for pair in PAIRS}


def promise_table() -> PromiseTable:
    """The table as the admin page and GET /admin/promises show it."""
    latest = db.session.execute(select(PromiseRule.updated_at, PromiseRule.updated_by)
                                .order_by(PromiseRule.updated_at.desc()).limit(1)).first()
    return PromiseTable(promise_rules(), latest.updated_at if latest else None, latest.updated_by if latest else None)


def save_promise_rules(changes: Mapping[tuple[str, str], object], actor: str) -> tuple[PromiseTable, bool]:
    """Set the days of the pairs in `changes` ((service, zone) → days as sent); the table after it and whether
    anything changed. See the module's rules."""
    problems: dict[str, str] = {}
    for pair, value in changes.items():
        if pair not in DEFAULT_PROMISE_DAYS:
            problems[f"days.{'.'.join(pair)}"[:60]] = "Unknown service or zone."
        elif (problem := promise_days_problem(value)) is not None:
            problems[f"days.{pair[0]}.{pair[1]}"] = problem
    if problems:
        raise ValidationError("The promised days are not valid; nothing was saved.", fields=problems)
    current = promise_rules()
    changed = {pair: int(value) for pair, value in changes.items() if current[pair] != value}  # type: ignore[call-overload]
    if not changed:
        return promise_table(), False
    now = utcnow()
    for (service, zone), days in changed.items():
        db.session.execute(dialect_insert(_RULES).values(service=service, zone=zone, days=days, updated_at=now,
                                                         updated_by=actor)
                           .on_conflict_do_update(index_elements=["service", "zone"],
                                                  set_={"days": days, "updated_at": now, "updated_by": actor}))
    record_audit("promise_rules_saved", actor=actor, target_type="promise_rules", target_id="table",
                 details={"changed": [{"service": service, "zone": zone, "from": current[(service, zone)],
                                       "to": days} for (service, zone), days in sorted(changed.items())]})
    return promise_table(), True


def promise_for(service: str, zone: str, booked_at: datetime, rules: PromiseRules | None = None) -> datetime:
    """When a booking of `service` to `zone` made at `booked_at` is promised by (rules read when not given)."""
    rules = promise_rules() if rules is None else rules
    return promised_by(booked_at, promise_days(rules, service, zone), current_app.config["DISPLAY_TIMEZONE"])


def given_promise(day: date, now: datetime | None = None) -> datetime:
    """The end of the day an integrator promised (DISPLAY_TIMEZONE); ValidationError naming `promised_by` when
    the day is before today or too far ahead (app.domain.promises.given_day_problem)."""
    tz_name = current_app.config["DISPLAY_TIMEZONE"]
    problem = given_day_problem(day, local_date(now or utcnow(), tz_name))
    if problem is not None:
        raise ValidationError(fields={"promised_by": problem})
    return end_of_local_day(day, tz_name)
