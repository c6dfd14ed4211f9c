"""A hub's scans: one status at one location for many scanned IDs, each its own change through the status-change
core (app.services.shipments.status_changes), audited once for the batch."""
from __future__ import annotations

from dataclasses import dataclass, field

from app.domain.status import canonical_status
from app.errors import ValidationError
from app.models.tracking_event import LOCATION_MAX, NOTE_MAX
from app.services.shipments.status_changes import ChangeOutcome, Refusal, StatusChange, apply_status_changes
from app.services.staff.audit import record_audit

MAX_SCANS = 1000
TRACKING_ID_INPUT_MAX = 64  # a typed ID with spaces and hyphens; anything longer is not a scan
RECEIVED_BY_MAX = 100
ATTEMPT_REASON_MAX = 200


@dataclass(frozen=True)
class ScanBatch:
    """What a hub worker picked once (status, location, note, proof fields) and the IDs scanned under it."""
    status: str
    location: str
    tracking_ids: list[str]
    note: str | None = None
    received_by: str | None = None
    attempt_reason: str | None = None


@dataclass(frozen=True)
class ScanReport:
    outcomes: list[ChangeOutcome] = field(default_factory=list)

    @property
    def accepted(self) -> int:
        return sum(1 for outcome in self.outcomes if outcome.ok)

    @property
    def refused(self) -> int:
        return len(self.outcomes) - self.accepted


def record_scans(batch: ScanBatch, actor: str) -> ScanReport:
    """Record one status at one location for every scanned ID, each its own change (apply_status_changes), and
    one `scan_batch` audit row for the whole batch naming the IDs it changed (never one row per scan: a hub scans
    thousands an hour, and each event already names who scanned it).

    Rules: a known status (ValidationError otherwise); a location; 1 to MAX_SCANS IDs; text within the columns'
    lengths. The caller commits.
    """
    status = canonical_status(batch.status or "")
    problems = {}
    if status is None:
        problems["status"] = "Choose a known status."
    if not batch.location or len(batch.location) > LOCATION_MAX:
        problems["location"] = f"Enter the location (at most {LOCATION_MAX} characters)."
    if batch.note and len(batch.note) > NOTE_MAX:
        problems["note"] = f"At most {NOTE_MAX} characters."
    if not batch.tracking_ids:
        problems["tracking_ids"] = "Scan or type at least one tracking ID."
    elif len(batch.tracking_ids) > MAX_SCANS:
        problems["tracking_ids"] = f"At most {MAX_SCANS} tracking IDs at once."
    if problems:
        raise ValidationError(fields=problems)
    changes = [StatusChange(tracking_id, status, batch.location, batch.note or None,
                            received_by=batch.received_by or None, attempt_reason=batch.attempt_reason or None,
                            proof_required=True)
               for tracking_id in batch.tracking_ids]
    outcomes = apply_status_changes(changes, actor, audit_each=False)
    # One status and one proof for the whole batch: Delivered needs who received it, Delivery Attempted a reason.
    # A proof the core refuses is refused for every scan alike, before anything is written: a 400 for the batch.
    # (A proof refused as sent has no current status; one refused for where a shipment comes from, Returned to
    # Sender at the end of a return leg, is that shipment's own refusal and the rest of the batch goes ahead.)
    refused_proof = next((outcome for outcome in outcomes
                          if outcome.refusal == Refusal.PROOF_MISSING and outcome.status is None), None)
    if refused_proof is not None:
        raise ValidationError(fields=refused_proof.fields)
    report = ScanReport(outcomes)
    record_audit("scan_batch", actor=actor, target_type="shipments", target_id=f"{len(changes)} scans",
                 details={"status": status, "location": batch.location, "scanned": len(changes),
                          "accepted": report.accepted, "refused": report.refused,
                          "changed": [outcome.tracking_id for outcome in report.outcomes if outcome.ok]})
    return report
