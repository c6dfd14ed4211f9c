"""The rate card in force, its saved versions, and what a booking costs on it (the rules: app.domain.pricing).

Rules: every save that changes something is a new version, numbered one above the newest, and the newest is the
card in force; versions are never edited (PostgreSQL refuses UPDATE on them), so the version a booking keeps
always names the prices it was priced at. Version 1 is the default card: migration 0017 stores it, and while no
version is stored at all (a database emptied by hand) the built-in DEFAULT_RATE_CARD stands for it and the first
save stores it before the new version. Saves are audited (`rate_card_saved`) in the same transaction.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from flask import current_app
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from app.domain.pricing import (
    DEFAULT_RATE_CARD,
    Charges,
    PricingError,
    RateCard,
    price,
    read_pricing_inputs,
    read_rate_card,
)
from app.domain.timeutil import isoformat_z, utcnow
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import RateCardVersion
from app.services.staff.audit import SYSTEM, record_audit

HISTORY_LIMIT = 50
MAX_VERSION = 2**31 - 1  # an INTEGER column
AUDITED_CHANGES_MAX = 60  # every slab field and the card's own fields: 23


@dataclass(frozen=True)
class SavedCard:
    """A version of the rate card, with who saved it and when (None for the built-in default, never stored)."""

    card: RateCard
    created_at: datetime | None
    created_by: str

    def document(self) -> dict:
        """The card's JSON, as GET /admin/rates answers and POST takes back."""
        return {**self.card.as_document(), "created_at": isoformat_z(self.created_at), "created_by": self.created_by}


def saved_card(version: int | None = None) -> SavedCard:
    """The version asked for, or the one in force (None); NotFound for a version never saved."""
    if version is not None and not 0 < version <= MAX_VERSION:
        raise NotFound(f"There is no rate card version {version}.")
    query = select(RateCardVersion)
    query = query.where(RateCardVersion.version == version) if version is not None \
        else query.order_by(RateCardVersion.version.desc()).limit(1)
    row = db.session.scalars(query).first()
    if row is not None:
        return _saved(row)
    if version in (None, DEFAULT_RATE_CARD.version) and _newest_version() is None:
        return SavedCard(DEFAULT_RATE_CARD, None, SYSTEM)
    raise NotFound(f"There is no rate card version {version}.")


def current_card() -> RateCard:
    """The rate card in force: the newest version."""
    return saved_card().card


def card_version(version: int) -> RateCard:
    """One version of the rate card, as it was saved (a booking's prices); NotFound if there is none."""
    return saved_card(version).card


def card_history(limit: int = HISTORY_LIMIT) -> list[SavedCard]:
    """The newest versions first, at most `limit`."""
    rows = db.session.scalars(select(RateCardVersion).order_by(RateCardVersion.version.desc()).limit(limit)).all()
    return [_saved(row) for row in rows] or [SavedCard(DEFAULT_RATE_CARD, None, SYSTEM)]


def save_card(data: Mapping, actor: str) -> tuple[SavedCard, bool]:
    """Save `data` (a card's JSON document) as the next version; returns it and whether a version was written.

    Rules: every field is checked (ValidationError naming each one, nothing written); `version` in `data`, when
    given, is the version the change was made to, and anything else is a Conflict (someone saved in between);
    a card equal to the one in force writes nothing and returns it; audited with the fields that changed.
    """
    try:
        proposed = read_rate_card(data, version=0)
    except PricingError as error:
        raise ValidationError("The rate card is not valid; nothing was saved.", fields=error.fields) from None
    current = saved_card()
    based_on = data.get("version") if isinstance(data, Mapping) else None
    if based_on is not None:
        if isinstance(based_on, bool) or not isinstance(based_on, int):
            raise ValidationError(fields={"version": "The version you changed: a whole number."})
        if based_on != current.card.version:
            raise Conflict(f"The rate card was changed since you opened it: version {current.card.version} is in "
                           f"force now. Open it again and make your change there.",
                           current_version=current.card.version)
    changed = proposed.differences(current.card)
    if not changed:
        return current, False
    if current.created_at is None:
        _store(current.card, SYSTEM)  # the built-in default, so that version 1 stays readable
    version = current.card.version + 1
    row = _store(replace(proposed, version=version), actor)
    try:
        db.session.flush()
    except IntegrityError:  # another save took this version number first
        raise Conflict("Another rate card version was saved at the same moment as yours; open the rate card "
                       "again and make your change there.") from None
    record_audit("rate_card_saved", actor=actor, target_type="rate_card", target_id=version,
                 details={"version": version, "previous_version": current.card.version,
                          "changed": changed[:AUDITED_CHANGES_MAX]})
    return _saved(row), True


def origin_pincode() -> str:
    """The office's PIN code (ORIGIN_PINCODE): where a booking without a sender PIN code is priced from."""
    return current_app.config["ORIGIN_PINCODE"]


def charges_for(*, destination_pincode: object = None, sender_pincode: object = None, service: object = None,
                weight_kg: object = None, length_cm: object = None, width_cm: object = None,
                height_cm: object = None, payment: object = None, cod_amount: object = None,
                card: RateCard | None = None) -> Charges:
    """What a booking costs on the card in force (or `card`), from its pricing fields as the booking has them:
    JSON values, form text, Decimals or None.

    Rules: as app.domain.pricing.read_pricing_inputs (defaults standard, prepaid, first slab; no destination PIN:
    national) and price; the origin is the sender's PIN code, else ORIGIN_PINCODE. A field that cannot be used is a
    ValidationError naming it by the booking's field name.
    """
    try:
        inputs = read_pricing_inputs(
            destination_pincode=destination_pincode, sender_pincode=sender_pincode, service=service,
            weight_kg=weight_kg, length_cm=length_cm, width_cm=width_cm, height_cm=height_cm, payment=payment,
            cod_amount=cod_amount)
    except PricingError as error:
        raise ValidationError(fields=error.fields) from None
    return price(card or current_card(), origin_pin=inputs.sender_pin or origin_pincode(),
                 destination_pin=inputs.destination_pin, service=inputs.service, weight_kg=inputs.weight_kg,
                 length_cm=inputs.length_cm, width_cm=inputs.width_cm, height_cm=inputs.height_cm,
                 payment=inputs.payment, cod_amount=inputs.cod_amount)


def _newest_version() -> int | None:
    return db.session.scalar(select(func.max(RateCardVersion.version)))


def _store(card: RateCard, actor: str) -> RateCardVersion:
    document = card.as_document()
    row = RateCardVersion(version=card.version, currency=card.currency, tax_rate=card.tax_rate,
                          volumetric_divisor=card.volumetric_divisor, cod_min=card.cod_min,
                          cod_percent=card.cod_percent, slabs=document["slabs"], created_at=utcnow(),
                          created_by=actor or SYSTEM)
    db.session.add(row)
    return row


def _saved(row: RateCardVersion) -> SavedCard:
    document = {"currency": row.currency, "tax_rate": row.tax_rate, "volumetric_divisor": row.volumetric_divisor,
                "cod": {"min": row.cod_min, "percent": row.cod_percent}, "slabs": row.slabs}
    # Stored versions were checked when saved; reading them through the same rules keeps one definition of a card.
    return SavedCard(read_rate_card(document, version=row.version), row.created_at, row.created_by)
