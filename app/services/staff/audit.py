"""The audit trail: one append-only row per staff or system action, written in the action's own transaction.

Rules: rows are only ever inserted (PostgreSQL refuses UPDATE and DELETE with a trigger); `action` comes from the
fixed list below; details never carry a password, token, secret, email body, email address or full mobile
number (such keys are refused, and email- or phone-like text in values is redacted).
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select

from app.domain.pagination import Pagination
from app.domain.timeutil import utcnow
from app.errors import ValidationError
from app.extensions import db
from app.models import AuditEntry
from app.models.audit_entry import ACTOR_MAX, TARGET_ID_MAX
from app.observability.request_context import current_client_address, current_request_id

ACTIONS: frozenset[str] = frozenset({
    # sign-in and sessions
    "login", "login_failed", "login_locked", "logout", "session_ended", "user_unlocked",
    # staff accounts
    "user_created", "user_updated",
    # shipments and the outbox
    "shipment_created", "shipment_edited", "status_changed", "notification_retried",
    # hub operations
    "scan_batch", "shipments_imported", "shipments_exported", "labels_printed", "receipt_printed",
    # prices
    "rate_card_saved",
    # integrations
    "api_key_created", "api_key_revoked", "webhook_created", "webhook_updated", "webhook_deleted",
    "webhook_delivery_replayed",
    # recipients
    "preferences_changed",
    # the network: the PIN codes served
    "serviceability_replaced",
    # the field: cash on delivery handed in at the hub; what proof a delivery needs, the delivery code
    "cod_remitted",
    "field_settings_changed",
    # the field: run sheets
    "runsheet_assigned", "runsheet_stop_moved", "runsheet_dispatched", "runsheet_printed",
    # planning: zones, dispatch runs asked for, a supervisor's override of a planned stop
    "zone_created", "zone_updated", "zone_deleted", "dispatch_requested", "runsheet_overridden",
    # failed deliveries: an answer to a non-delivery report (actor "recipient", staff, or an API key); operations
    "ndr_answered", "alert_acknowledged", "promise_rules_saved",
})
SYSTEM, CUSTOMER = "system", "customer"
FORBIDDEN_DETAIL_KEYS = frozenset({"password", "password_hash", "token", "secret", "key", "api_key", "body",
                                   "body_text", "body_html", "email", "mobile", "phone"})
_EMAIL = re.compile(r"[^\s@]+@[^\s@]+\.[^\s@]+")
_PHONE = re.compile(r"\+?\d[\d\s().-]{6,}\d")
# A run _PHONE finds is a full mobile number when it has a national number's 10 digits or more, or is written in
# international form: an all-digit tracking ID (8 hex digits can all be decimal), a date or an amount is not.
_FULL_MOBILE_DIGITS, _INTERNATIONAL_DIGITS = 10, 8
REDACTED = "[redacted]"
AUDIT_PAGE_SIZE = 25
AUDIT_MAX_PAGE = 10_000


def record_audit(action: str, *, actor: str, target_type: str | None = None, target_id: str | int | None = None,
                 details: dict | None = None) -> None:
    """Append one audit row in the caller's transaction (it commits or rolls back with the change it records).

    The request id and client address come from the current request, when there is one.
    """
    if action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}; add it to app.services.staff.audit.ACTIONS")
    db.session.add(AuditEntry(
        at=utcnow(), actor=(actor or SYSTEM)[:ACTOR_MAX], action=action, target_type=target_type,
        target_id=None if target_id is None else str(target_id)[:TARGET_ID_MAX],
        request_id=current_request_id(), client_address=current_client_address(),
        details=_clean_details(details) if details else None,
    ))


def record_audits(action: str, *, actor: str, entries: list[tuple[str | None, str | int | None, dict | None]]) -> None:
    """record_audit for many targets at once, one INSERT (`entries` are (target_type, target_id, details)): a
    batch of hub scans writes one row per accepted change."""
    if action not in ACTIONS:
        raise ValueError(f"Unknown audit action {action!r}; add it to app.services.staff.audit.ACTIONS")
    if not entries:
        return
    at, request_id, client_address = utcnow(), current_request_id(), current_client_address()
    db.session.execute(AuditEntry.__table__.insert(), [
        {"at": at, "actor": (actor or SYSTEM)[:ACTOR_MAX], "action": action, "target_type": target_type,
         "target_id": None if target_id is None else str(target_id)[:TARGET_ID_MAX], "request_id": request_id,
         "client_address": client_address, "details": _clean_details(details) if details else None}
        for target_type, target_id, details in entries])


def _clean_details(details: dict) -> dict:
    forbidden = FORBIDDEN_DETAIL_KEYS.intersection(k.lower() for k in details)
    if forbidden:
        raise ValueError(f"Audit details must not carry {sorted(forbidden)}")
    return {key: _clean_value(value) for key, value in details.items()}


def _redacted_if_mobile(match: re.Match) -> str:
    text = match.group(0)
    digits = sum(character.isdigit() for character in text)
    international = text.startswith("+") and digits >= _INTERNATIONAL_DIGITS
    return REDACTED if digits >= _FULL_MOBILE_DIGITS or international else text


def _clean_value(value):
    if isinstance(value, str):
        return _PHONE.sub(_redacted_if_mobile, _EMAIL.sub(REDACTED, value))
    if isinstance(value, list | tuple):
        return [_clean_value(v) for v in value]
    if isinstance(value, dict):
        return _clean_details(value)
    return value


@dataclass(frozen=True)
class AuditFilter:
    actor: str | None = None
    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None


@dataclass(frozen=True)
class AuditPage(Pagination):
    entries: list[AuditEntry]
    page: int
    per_page: int
    total: int


def list_audit(filters: AuditFilter, page: int = 1, per_page: int = AUDIT_PAGE_SIZE) -> AuditPage:
    """One page of the audit trail, newest first, filtered by actor, action, target and time range.

    Rules: an unknown action is a ValidationError; pages count from 1.
    """
    if filters.action and filters.action not in ACTIONS:
        raise ValidationError(fields={"action": "Unknown action."})
    if not 1 <= page <= AUDIT_MAX_PAGE:
        raise ValidationError(fields={"page": f"Must be a whole number from 1 to {AUDIT_MAX_PAGE}."})
    conditions = []
    if filters.actor:
        conditions.append(func.lower(AuditEntry.actor) == filters.actor.strip().lower())
    if filters.action:
        conditions.append(AuditEntry.action == filters.action)
    if filters.target_type:
        conditions.append(AuditEntry.target_type == filters.target_type)
    if filters.target_id:
        conditions.append(AuditEntry.target_id == filters.target_id)
    if filters.since:
        conditions.append(AuditEntry.at >= filters.since)
    if filters.until:
        conditions.append(AuditEntry.at < filters.until)
    entries = list(db.session.scalars(
        select(AuditEntry).where(*conditions).order_by(AuditEntry.at.desc(), AuditEntry.id.desc())
        .limit(per_page).offset((page - 1) * per_page)
    ))
    total = db.session.scalar(select(func.count()).select_from(AuditEntry).where(*conditions)) or 0
    return AuditPage(entries=entries, page=page, per_page=per_page, total=total)


def audit_for_target(target_type: str, target_id: str, limit: int = 50) -> list[AuditEntry]:
    """The newest audit entries about one thing (e.g. a shipment's page shows its own)."""
    return list(db.session.scalars(
        select(AuditEntry).where(AuditEntry.target_type == target_type, AuditEntry.target_id == target_id)
        .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(limit)
    ))
