"""Status changes in bulk: the one core every status change goes through (a hub's scans, and a single update as
a batch of one).

Rules:
- Each shipment's change is its own unit: a refused change (unknown ID, a transition the state machine does not
  allow, already in that status at that location, the same ID twice in one batch) refuses only that one, with
  its reason; the others go ahead. Nothing is written for a refused change.
- An accepted change writes exactly what a single update writes: the new status, one appended event, its proof
  of delivery (checked here from the fields as sent, before anything is written: the only way a proof enters),
  the recipient's email (outbox), its non-delivery report opened or closed (app.services.ndr.reports) and one
  `status_changed` audit row, in the caller's transaction. Scan mode
  audits its batch once instead (app.services.shipments.scans).
- Set-based: one query loads the batch's shipments, one the events the checks need (the latest location, and
  the held-from status of shipments On Hold), one compare-and-set UPDATE per requested status, then the events,
  emails and audit rows are inserted in bulk and the tracking cache is told about every changed shipment.
- Concurrent changes are serialised by the compare-and-set on (status, updated_at): a change whose shipment
  moved under it is checked again against the new state, and either applies on top of it or is refused. The
  same statements run on PostgreSQL and SQLite.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum

from sqlalchemy import bindparam, select, text, tuple_, update

from app.domain.status import Status, allowed_next_statuses, canonical_status
from app.domain.timeutil import utcnow
from app.domain.tracking_ids import normalise_tracking_id
from app.errors import Conflict, InvalidTransition, ValidationError
from app.extensions import db
from app.models import Shipment, TrackingEvent
from app.services.field import delivery_codes, stops
from app.services.ndr import reports as ndr_reports
from app.services.outbox import queueing as outbox
from app.services.outbox.preferences import SENDER_STATUSES
from app.services.outbox.webhooks import queue_webhook_deliveries
from app.services.shipments import proofs, tracking_cache
from app.services.shipments.queries import NEWEST_FIRST, held_from_query, shipment_not_found
from app.services.staff.audit import record_audits

# Rounds of the compare-and-set: a change that lost a race is checked again and retried this many times in all.
CAS_ATTEMPTS = 8
_SHIPMENTS, _EVENTS = Shipment.__table__, TrackingEvent.__table__
_INSERT_EVENTS = _EVENTS.insert().returning(_EVENTS.c.id, sort_by_parameter_order=True)


class Refusal(StrEnum):
    UNKNOWN_ID = "unknown_id"
    NOT_ALLOWED = "not_allowed"
    ALREADY_THERE = "already_there"
    REPEATED = "repeated_in_batch"
    BUSY = "busy"
    PROOF_MISSING = "proof_missing"


@dataclass(frozen=True)
class StatusChange:
    """One shipment's requested change. `status` is a canonical status name (canonical_status)."""
    tracking_id: str
    status: str
    location: str
    note: str | None = None
    customer_message: str | None = None
    # Proof of delivery, as sent: who took a Delivered parcel (and the signature, PNG bytes or the staff form's
    # data URL, and photo taken at the door), why a Delivery Attempted one was not delivered. Checked and recorded
    # here, the only way a proof enters; `proof_required`: staff pages, scan mode and /api/v1 must give it.
    received_by: str | None = None
    attempt_reason: str | None = None
    signature: bytes | str | None = None
    photo: bytes | None = None
    proof_required: bool = False
    # When it happened, if not now: the courier app's offline actions carry the courier's time (checked by the
    # caller against app.domain.field.event_time_problem). The event is stamped with it.
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class ChangeOutcome:
    """What became of one change: accepted (`ok`, `status` is the new status, `event` the appended event) or
    refused (`refusal` and `error` say why; `status` is the shipment's current status when it exists; `fields`
    names each refused proof field)."""
    tracking_id: str
    ok: bool
    status: str | None = None
    error: str | None = None
    refusal: Refusal | None = None
    allowed: tuple[str, ...] = ()
    shipment_id: int | None = None
    event: TrackingEvent | None = None
    fields: dict[str, str] | None = None


@dataclass
class _Current:
    """A shipment as the checks see it: read in this round, compared and set by the UPDATE."""
    id: int
    tracking_id: str
    status: str
    updated_at: datetime
    email: str
    latest_location: str | None = None
    held_from: str | None = None
    changed_at: datetime | None = None  # set once the compare-and-set made the change ours


def apply_status_changes(changes: Sequence[StatusChange], actor: str, *,
                         refuse_same_place: bool = True, audit_each: bool = True) -> list[ChangeOutcome]:
    """Apply every change that the state machine allows, in the caller's transaction; one outcome per change,
    in order. Each accepted change gets its status, event, email and audit row; a refused one writes nothing.

    `refuse_same_place`: a shipment asked for the status it has, at the location of its latest event, is refused
    as "already there" (a parcel scanned twice at one hub). A single update from a shipment's page passes False:
    there the state machine alone decides (In Transit may be recorded again at the same hub).

    `audit_each`: one `status_changed` audit row per accepted change. Scan mode passes False and audits the
    batch once (scans.record_scans); each event still names its actor.
    """
    outcomes: list[ChangeOutcome | None] = [None] * len(changes)
    first_of: dict[str, int] = {}
    repeats: dict[int, int] = {}
    checked_proofs: dict[int, proofs.Proof] = {}
    for index, change in enumerate(changes):
        canonical = normalise_tracking_id(change.tracking_id)
        problem = _proof_problem(change, index, checked_proofs)
        if problem is not None:
            outcomes[index] = replace(_refused((canonical or change.tracking_id.strip())[:32], Refusal.PROOF_MISSING,
                                               error=" ".join(f"{name}: {text}" for name, text in problem.items())),
                                      fields=problem)
        elif canonical is None:
            outcomes[index] = _refused(change.tracking_id.strip()[:32], Refusal.UNKNOWN_ID)
        elif canonical in first_of:
            outcomes[index] = _refused(canonical, Refusal.REPEATED)
            repeats[index] = first_of[canonical]
        else:
            first_of[canonical] = index
    found = _load(_SHIPMENTS.c.tracking_id.in_(list(first_of))) if first_of else {}
    by_tracking_id = {row.tracking_id: row for row in found.values()}
    todo: dict[int, _Current] = {}
    for canonical, index in first_of.items():
        row = by_tracking_id.get(canonical)
        if row is None:
            outcomes[index] = _refused(canonical, Refusal.UNKNOWN_ID)
        else:
            todo[index] = row

    won: dict[int, _Current] = {}
    for _ in range(CAS_ATTEMPTS):
        _add_event_context(todo, changes, refuse_same_place)
        candidates: dict[int, _Current] = {}
        for index, row in todo.items():
            refusal = _check(changes[index], row, refuse_same_place, checked_proofs.get(index))
            if refusal is not None:
                outcomes[index] = refusal
            else:
                candidates[index] = row
        # The time is taken after this round read the rows and before they are ours: the compare-and-set on
        # updated_at fails for any change committed since the read, so event order and commit order agree.
        now = utcnow()
        winners = _compare_and_set({i: (row, changes[i].status) for i, row in candidates.items()}, now)
        for index, row in candidates.items():
            if row.id in winners:
                row.changed_at = now
                won[index] = row
        lost = {i: row.id for i, row in candidates.items() if row.id not in winners}
        if not lost:
            todo = {}
            break
        reloaded = _load(_SHIPMENTS.c.id.in_(list(lost.values())))
        todo = {i: reloaded[shipment_id] for i, shipment_id in lost.items() if shipment_id in reloaded}
    for index, row in todo.items():
        outcomes[index] = _refused(row.tracking_id, Refusal.BUSY, current=row.status)

    for index, outcome in _write(won, changes, actor, checked_proofs, audit_each).items():
        outcomes[index] = outcome
    for index, first in repeats.items():  # a repeat tells the status its first scan left the shipment in
        outcomes[index] = replace(outcomes[index], status=outcomes[first].status)
    return outcomes


def _load(condition) -> dict[int, _Current]:
    rows = db.session.execute(
        select(_SHIPMENTS.c.id, _SHIPMENTS.c.tracking_id, _SHIPMENTS.c.status, _SHIPMENTS.c.updated_at,
               _SHIPMENTS.c.email).where(condition)
    ).all()
    return {row.id: _Current(row.id, row.tracking_id, row.status, row.updated_at, row.email) for row in rows}


def _add_event_context(todo: dict[int, _Current], changes: Sequence[StatusChange], same_place: bool) -> None:
    """The latest event's location (for "already there") of shipments asked for their own status again, and the
    held-from status (queries.held_from_query) of shipments On Hold, for all of them in one query."""
    needed = {row.id: row for index, row in todo.items()
              if row.status == Status.ON_HOLD or (same_place and row.status == changes[index].status)}
    if not needed:
        return
    latest_location = (select(_EVENTS.c.location).where(_EVENTS.c.shipment_id == _SHIPMENTS.c.id)
                       .order_by(*NEWEST_FIRST).limit(1).scalar_subquery())
    rows = db.session.execute(select(_SHIPMENTS.c.id, latest_location.label("latest_location"),
                                     held_from_query(_SHIPMENTS.c.id).label("held_from"))
                              .where(_SHIPMENTS.c.id.in_(list(needed)))).all()
    for row in rows:
        current = needed[row.id]
        current.latest_location, current.held_from = row.latest_location, row.held_from


def _check(change: StatusChange, row: _Current, refuse_same_place: bool,
           proof: proofs.Proof | None) -> ChangeOutcome | None:
    """Why this change cannot be applied to the shipment as it is now (None: it can). `proof` is the change's
    checked proof of delivery, if any."""
    allowed = tuple(allowed_next_statuses(row.status, row.held_from if row.status == Status.ON_HOLD else None))
    if refuse_same_place and change.status == row.status and _same_place(change.location, row.latest_location):
        return _refused(row.tracking_id, Refusal.ALREADY_THERE, current=row.status, allowed=allowed,
                        error=f"Already {row.status} at {row.latest_location}.")
    if change.status not in allowed:
        error = (f"Not allowed from {row.status}; allowed next: {', '.join(allowed)}." if allowed
                 else f"{row.status} is final: it cannot change any more.")
        return _refused(row.tracking_id, Refusal.NOT_ALLOWED, current=row.status, allowed=allowed, error=error)
    missing = proofs.missing_proof(change.status, row.status, proof) if change.proof_required else {}
    if missing:
        return replace(_refused(row.tracking_id, Refusal.PROOF_MISSING, current=row.status, allowed=allowed,
                                error=" ".join(f"{name}: {message}" for name, message in missing.items())),
                       fields=missing)
    return None


def _proof_problem(change: StatusChange, index: int, checked: dict[int, proofs.Proof]) -> dict[str, str] | None:
    """Why this change's proof of delivery is refused, per field (None: it is fine, and the proof to record, if
    its status takes one, is put in `checked` under `index`). Checked before anything is written, so a refused
    proof writes nothing, and no file is stored."""
    try:
        proof = proofs.check_proof(change.status, change.received_by, change.attempt_reason,
                                   required=change.proof_required, signature=change.signature, photo=change.photo)
    except ValidationError as exc:
        return exc.fields or {"proof": exc.message}
    if proof is not None:
        checked[index] = proof
    return None


def _same_place(location: str, latest: str | None) -> bool:
    return latest is not None and " ".join(location.split()).casefold() == " ".join(latest.split()).casefold()


def _compare_and_set(candidates: dict[int, tuple[_Current, str]], now: datetime) -> set[int]:
    """Set each candidate's new status (and updated_at) if its shipment still has the status and updated_at it
    was checked against; the ids of the shipments that were set (their rows stay locked until the transaction
    ends). One UPDATE per requested status."""
    by_status: dict[str, list[_Current]] = defaultdict(list)
    for row, status in candidates.values():
        by_status[status].append(row)
    winners: set[int] = set()
    postgresql = db.session.get_bind().dialect.name == "postgresql"
    for status, rows in by_status.items():
        if postgresql:
            winners.update(db.session.execute(_CAS_POSTGRESQL, {
                "new_status": status, "now": now, "ids": [row.id for row in rows],
                "statuses": [row.status for row in rows], "stamps": [row.updated_at for row in rows]}).scalars())
            continue
        # `id IN` lets the database find the rows by primary key; the row values are the compare part.
        winners.update(db.session.execute(
            update(Shipment)
            .where(_SHIPMENTS.c.id.in_([row.id for row in rows]),
                   tuple_(_SHIPMENTS.c.id, _SHIPMENTS.c.status, _SHIPMENTS.c.updated_at)
                   .in_([(row.id, row.status, row.updated_at) for row in rows]))
            .values(status=status, updated_at=now)
            .returning(_SHIPMENTS.c.id)
            .execution_options(synchronize_session=False)
        ).scalars())
    return winners


# PostgreSQL joins the batch as arrays (one bind each, planned once) rather than a list of row values, which it
# would test one by one against every row: a third of the time of a batch of 1,000.
_CAS_POSTGRESQL = text(
    "UPDATE shipments SET status = :new_status, updated_at = :now"
    " FROM unnest(CAST(:ids AS integer[]), CAST(:statuses AS varchar[]), CAST(:stamps AS timestamptz[]))"
    " AS seen(id, status, updated_at)"
    " WHERE shipments.id = seen.id AND shipments.status = seen.status AND shipments.updated_at = seen.updated_at"
    " RETURNING shipments.id"
).bindparams(bindparam("now", type_=Shipment.__table__.c.updated_at.type))


def _write(won: dict[int, _Current], changes: Sequence[StatusChange], actor: str,
           checked_proofs: dict[int, proofs.Proof], audit_each: bool) -> dict[int, ChangeOutcome]:
    """The accepted changes' updated_at, events, emails, audit rows and cache notices, each in bulk."""
    if not won:
        return {}
    connection = db.session.connection()
    indexes = list(won)
    values = [{"shipment_id": won[i].id, "status": changes[i].status, "location": changes[i].location,
               "note": changes[i].note or None, "customer_message": changes[i].customer_message or None,
               "actor": actor, "occurred_at": changes[i].occurred_at or won[i].changed_at} for i in indexes]
    event_ids = connection.execute(_INSERT_EVENTS, values).scalars().all()
    events = {i: TrackingEvent(id=event_id, **row) for i, event_id, row in zip(indexes, event_ids, values, strict=True)}
    proofs.record_proofs([(event_id, won[i].id, checked_proofs.get(i)) for i, event_id in zip(indexes, event_ids,
                                                                                              strict=True)])
    _queue_emails(event_ids)
    _queue_sender_notices([event_id for i, event_id in zip(indexes, event_ids, strict=True)
                           if changes[i].status in SENDER_STATUSES])
    queue_webhook_deliveries(event_ids)
    delivery_codes.issue_for(event_id for i, event_id in zip(indexes, event_ids, strict=True)
                             if changes[i].status == Status.OUT_FOR_DELIVERY)
    stops.close_stops({won[i].id: changes[i].status for i in indexes}, utcnow())
    # A failed attempt opens its non-delivery report, a settled parcel closes it (app.services.ndr.reports).
    ndr_reports.on_status_changes(
        (ndr_reports.AcceptedChange(won[i].id, won[i].status, changes[i].status, event_id,
                                    getattr(checked_proofs.get(i), "attempt_reason", None))
         for i, event_id in zip(indexes, event_ids, strict=True)), utcnow())
    if audit_each:
        record_audits("status_changed", actor=actor, entries=[
            ("shipment", won[i].tracking_id, {"from": won[i].status, "to": changes[i].status,
                                              "location": changes[i].location}) for i in indexes])
    tracking_cache.publish_changes([row.tracking_id for row in won.values()])
    return {i: ChangeOutcome(tracking_id=won[i].tracking_id, ok=True, status=changes[i].status,
                             shipment_id=won[i].id, event=events[i]) for i in indexes}


def _queue_emails(event_ids: list[int]) -> None:
    """The recipient's email about each new event, as a booking queues its own, in one INSERT."""
    source = (select(_EVENTS.c.shipment_id, _EVENTS.c.id.label("event_id"), _SHIPMENTS.c.tracking_id,
                     _EVENTS.c.status, _SHIPMENTS.c.email.label("recipient"), _EVENTS.c.occurred_at.label("due_at"))
              .join_from(_EVENTS, _SHIPMENTS, _SHIPMENTS.c.id == _EVENTS.c.shipment_id)
              .where(_EVENTS.c.id.in_(event_ids)).subquery("email"))
    db.session.connection().execute(outbox.status_email_insert_from(source))
    outbox.mark_outbox_changed(db.session)


def _queue_sender_notices(event_ids: list[int]) -> None:
    """The sender's notices about those of the new events the sender hears of, in one INSERT (none at all, not
    even a statement, for a batch without such an event: most batches)."""
    if not event_ids:
        return
    source = (select(_EVENTS.c.shipment_id, _EVENTS.c.id.label("event_id"), _SHIPMENTS.c.tracking_id,
                     _EVENTS.c.status, _SHIPMENTS.c.sender_email, _SHIPMENTS.c.sender_mobile,
                     _EVENTS.c.occurred_at.label("due_at"))
              .join_from(_EVENTS, _SHIPMENTS, _SHIPMENTS.c.id == _EVENTS.c.shipment_id)
              .where(_EVENTS.c.id.in_(event_ids)).subquery("sender"))
    db.session.connection().execute(outbox.sender_notice_insert_from(source))


def _refused(tracking_id: str, refusal: Refusal, *, current: str | None = None, allowed: tuple[str, ...] = (),
             error: str | None = None) -> ChangeOutcome:
    return ChangeOutcome(tracking_id=tracking_id, ok=False, status=current, refusal=refusal, allowed=allowed,
                         error=error or _MESSAGES[refusal])


_MESSAGES = {
    Refusal.UNKNOWN_ID: "Unknown ID: no shipment has this tracking ID.",
    Refusal.REPEATED: "Scanned twice in this batch: only the first scan counts.",
    Refusal.BUSY: "Being updated by someone else at this moment: scan it again.",
}


def record_status_change(tracking_id: str, status: str, location: str, note: str | None,
                         actor: str, *, customer_message: str | None = None, received_by: str | None = None,
                         attempt_reason: str | None = None, signature: bytes | str | None = None,
                         photo: bytes | None = None, proof_required: bool = False) -> tuple[Shipment, TrackingEvent]:
    """Move a shipment to `status`: new status, one appended event, its proof of delivery, the recipient's email
    and the audit row, one unit. A batch of one through the bulk core (apply_status_changes), so both follow the
    same rules.

    `note` is for staff only; `customer_message` is what the customer sees (tracking page and email). The proof
    fields are as sent (see StatusChange): checked and recorded with the event.

    Errors: ValidationError for an unknown status or a refused proof (naming each field), NotFound,
    InvalidTransition (409, naming the allowed next statuses), Conflict when concurrent changes kept winning the
    compare-and-set, StoreUnavailable (503) when the proof's files cannot be stored. Concurrent changes are
    serialised by that compare-and-set: a change that lost the race is checked again against the new status,
    and either applies on top of it or fails with InvalidTransition.
    """
    requested = canonical_status(status)
    if requested is None:
        raise ValidationError(fields={"status": f"Unknown status {status[:40]!r}."})
    [outcome] = apply_status_changes(
        [StatusChange(tracking_id, requested, location, note, customer_message=customer_message,
                      received_by=received_by, attempt_reason=attempt_reason, signature=signature, photo=photo,
                      proof_required=proof_required)],
        actor,
        refuse_same_place=False)
    if not outcome.ok:
        if outcome.refusal == Refusal.PROOF_MISSING:
            raise ValidationError(fields=outcome.fields)
        if outcome.refusal == Refusal.UNKNOWN_ID:
            raise shipment_not_found(tracking_id)
        if outcome.refusal == Refusal.NOT_ALLOWED:
            raise InvalidTransition(outcome.status, requested, list(outcome.allowed))
        raise Conflict("The shipment is being updated by someone else; please try again.")
    # The caller gets the shipment as it now is in this transaction (status and updated_at set by the core).
    shipment = db.session.get(Shipment, outcome.shipment_id, populate_existing=True)
    return shipment, outcome.event
