"""A supervisor's override of a planned stop: a parcel moved to another run sheet or to another place in one, with
the reason, kept for the weekly review (POST /admin/runsheets/<id>/stops, GET /admin/dispatch/overrides).

Rules:
- The reason is required: REASON_MIN to REASON_MAX characters (400).
- The run sheet and the parcel must exist (404). The parcel may not be final, nor in a status that cannot go on
  a run sheet; the run sheet may not be of a past day, nor of an account that is no longer an active courier;
  a parcel coming from elsewhere may not take the courier past their capacity (each 422, naming the field).
- The parcel's stop goes to `sequence` (1-based, in the run sheet's order; past the end: last), the other stops
  shifting to make room, from wherever it was open (or from nowhere): app.services.field.runsheets.place_stop.
  Its ETA is cleared (the plan no longer holds for it).
- Each override is a RunSheetOverride row (from and to run sheet and sequence, reason, who, when) and an audit row
  `runsheet_overridden` in the same transaction; callers commit.
- The review lists a week's overrides (ISO week, Monday to Sunday in DISPLAY_TIMEZONE), oldest first.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import aliased

from app.domain.field import stop_kind
from app.domain.planning import override_reason_problem
from app.domain.roles import Role
from app.domain.status import is_final
from app.domain.timeutil import local_day_start, utcnow
from app.domain.tracking_ids import normalise_tracking_id
from app.errors import NotFound, Unprocessable, ValidationError
from app.extensions import db
from app.models import CourierProfile, RunSheet, RunSheetOverride, Shipment, User
from app.services.field.runsheets import (
    RunSheetView,
    local_today,
    open_stop_count,
    place_stop,
    runsheet_view,
)
from app.services.staff.audit import record_audit


@dataclass(frozen=True)
class OverrideView:
    id: int
    tracking_id: str
    from_runsheet_id: int | None
    from_courier: str | None
    from_sequence: int | None
    to_runsheet_id: int | None
    to_courier: str | None
    to_sequence: int
    reason: str
    actor: str
    at: datetime


@dataclass(frozen=True)
class OverrideResult:
    override: OverrideView
    runsheet: RunSheetView


def override_stop(runsheet_id: int, tracking_id: str, sequence: int, reason: str, *, actor: str,
                  timezone: str) -> OverrideResult:
    """Move the parcel's stop to `sequence` on run sheet `runsheet_id`, for `reason` (see the module's rules)."""
    reason = reason.strip()
    problems = {}
    if (problem := override_reason_problem(reason)) is not None:
        problems["reason"] = problem
    if sequence < 1:
        problems["sequence"] = "From 1 (the first stop)."
    if problems:
        raise ValidationError(fields=problems)
    sheet = db.session.scalars(select(RunSheet).where(RunSheet.id == runsheet_id).with_for_update()).first()
    if sheet is None:
        raise NotFound("No run sheet has this number.")
    canonical = normalise_tracking_id(tracking_id)
    shipment = db.session.scalars(select(Shipment).where(Shipment.tracking_id == canonical)
                                  .execution_options(populate_existing=True)).first() if canonical else None
    if shipment is None:
        raise NotFound("No shipment has this tracking ID.",
                       fields={"tracking_id": "No shipment has this tracking ID."})
    _check_parcel(shipment)
    courier = db.session.get(User, sheet.courier_id)
    profile = db.session.get(CourierProfile, sheet.courier_id)
    today = local_today(timezone)
    if sheet.date < today:
        raise Unprocessable(f"Run sheet {sheet.id} is of a past day ({sheet.date.isoformat()}).",
                            fields={"runsheet": "Choose a run sheet of today or a later day."})
    if courier.role != Role.COURIER or not courier.active or profile is None:
        raise Unprocessable(fields={"runsheet": f"{courier.username} is no longer an active courier."})
    already_here = any(stop.tracking_id == shipment.tracking_id and stop.state == "open"
                       for stop in runsheet_view(sheet.id).stops)
    if not already_here and open_stop_count(sheet.id) >= profile.capacity:
        raise Unprocessable(f"{courier.username} already has {profile.capacity} open stops, their capacity.",
                            fields={"runsheet": "The courier has no room for another parcel."})
    placed = place_stop(sheet, shipment, sequence)
    row = RunSheetOverride(shipment_id=shipment.id, from_runsheet_id=placed.from_runsheet_id,
                           from_sequence=placed.from_sequence, to_runsheet_id=sheet.id,
                           to_sequence=placed.to_sequence, reason=reason, actor=actor, at=utcnow())
    db.session.add(row)
    db.session.flush()
    record_audit("runsheet_overridden", actor=actor, target_type="shipment", target_id=shipment.tracking_id,
                 details={"from_runsheet": placed.from_runsheet_id, "from_sequence": placed.from_sequence,
                          "to_runsheet": sheet.id, "to_sequence": placed.to_sequence, "courier": courier.username,
                          "reason": reason, "override": row.id})
    db.session.flush()
    return OverrideResult(_views(select(RunSheetOverride).where(RunSheetOverride.id == row.id))[0],
                          runsheet_view(sheet.id))


def _check_parcel(shipment: Shipment) -> None:
    if is_final(shipment.status):
        raise Unprocessable(fields={"tracking_id": f"{shipment.status} is final: it cannot go on a run sheet."})
    if stop_kind(shipment.status, shipment.pickup) is None:
        raise Unprocessable(fields={"tracking_id": f"A parcel that is {shipment.status} cannot go on a run sheet."})


def list_overrides(week: date, timezone: str) -> list[OverrideView]:
    """The overrides of the ISO week that starts on Monday `week` (local days), oldest first."""
    since = local_day_start(week, timezone)
    until = local_day_start(week + timedelta(days=7), timezone)
    return _views(select(RunSheetOverride).where(RunSheetOverride.at >= since, RunSheetOverride.at < until)
                  .order_by(RunSheetOverride.at, RunSheetOverride.id))


def _views(statement) -> list[OverrideView]:
    source, target = aliased(RunSheet), aliased(RunSheet)
    source_courier, target_courier = aliased(User), aliased(User)
    overrides = statement.subquery()
    row_of = aliased(RunSheetOverride, overrides)
    rows = db.session.execute(
        select(row_of, Shipment.tracking_id, source_courier.username.label("from_courier"),
               target_courier.username.label("to_courier"))
        .join(Shipment, Shipment.id == row_of.shipment_id)
        .outerjoin(source, source.id == row_of.from_runsheet_id)
        .outerjoin(source_courier, source_courier.id == source.courier_id)
        .outerjoin(target, target.id == row_of.to_runsheet_id)
        .outerjoin(target_courier, target_courier.id == target.courier_id)
        .order_by(row_of.at, row_of.id)).all()
    return [OverrideView(id=row[0].id, tracking_id=row.tracking_id, from_runsheet_id=row[0].from_runsheet_id,
                         from_courier=row.from_courier, from_sequence=row[0].from_sequence,
                         to_runsheet_id=row[0].to_runsheet_id, to_courier=row.to_courier,
                         to_sequence=row[0].to_sequence, reason=row[0].reason, actor=row[0].actor, at=row[0].at)
            for row in rows]
