"""The field settings an admin chooses: what proof a delivery needs, per kind (`off`, `warn`, `required`), and
whether the recipient gets a delivery code at Out for Delivery (`delivery_otp`: `on` or `off`).

Rules:
- A setting without a row is its default (app.domain.field.SETTING_DEFAULTS); a row holding a value that is no
  longer allowed counts as the default too, so a bad row can never switch a check off by surprise.
- A change names only the settings it changes; every value is checked before any is written; an unknown name or
  value is a ValidationError naming it. Each change is audited (`field_settings_changed`, from and to), in the
  caller's transaction; a save that changes nothing writes nothing.
"""
from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.domain.field import DELIVERY_OTP, PROOF_KINDS, PROOF_LEVELS, SETTING_DEFAULTS
from app.domain.timeutil import utcnow
from app.errors import ValidationError
from app.extensions import db
from app.models import FieldSetting
from app.services.staff.audit import record_audit

OTP_CHOICES: tuple[str, ...] = ("on", "off")
SETTING_CHOICES: dict[str, tuple[str, ...]] = {**{kind: PROOF_LEVELS for kind in PROOF_KINDS},
                                               DELIVERY_OTP: OTP_CHOICES}
_UPSERT = {name: insert(FieldSetting.__table__) for name, insert in (("postgresql", pg_insert),
                                                                     ("sqlite", sqlite_insert))}


def get_settings() -> dict[str, str]:
    """Every field setting by name: the stored choice, else the default."""
    stored = {row.key: row.value for row in db.session.execute(select(FieldSetting.key, FieldSetting.value))}
    return {key: stored[key] if stored.get(key) in SETTING_CHOICES[key] else str(default)
            for key, default in SETTING_DEFAULTS.items()}


def otp_on(settings: Mapping[str, str]) -> bool:
    return settings[DELIVERY_OTP] == "on"


def set_settings(changes: Mapping[str, object], actor: str) -> dict[str, str]:
    """Store the settings in `changes` (name → value, any letter case) and return all of them as they now are.

    Rules: see the module.
    """
    problems: dict[str, str] = {}
    wanted: dict[str, str] = {}
    for key, value in changes.items():
        allowed = SETTING_CHOICES.get(key)
        if allowed is None:
            problems[str(key)[:40]] = "Unknown setting."
        elif not isinstance(value, str) or value.strip().lower() not in allowed:
            problems[key] = f"Must be one of: {', '.join(allowed)}."
        else:
            wanted[key] = value.strip().lower()
    if problems:
        raise ValidationError(fields=problems)
    current = get_settings()
    changed = {key: value for key, value in wanted.items() if current[key] != value}
    if not changed:
        return current
    now = utcnow()
    statement = _UPSERT[db.session.get_bind().dialect.name]
    db.session.execute(statement.on_conflict_do_update(
        index_elements=["key"], set_={"value": statement.excluded.value, "updated_at": statement.excluded.updated_at,
                                      "updated_by": statement.excluded.updated_by}),
        [{"key": key, "value": value, "updated_at": now, "updated_by": actor} for key, value in changed.items()])
    record_audit("field_settings_changed", actor=actor, target_type="field_settings", target_id="field",
                 details={key: {"from": current[key], "to": value} for key, value in changed.items()})
    return {**current, **changed}
