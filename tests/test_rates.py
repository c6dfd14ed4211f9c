"""The rate card on a database (SQLite and PostgreSQL): versions, audit, refusals and charges."""
from __future__ import annotations

import copy
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from app.domain.pricing import DEFAULT_RATE_CARD
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import AuditEntry, RateCardVersion
from app.services.shipments.rates import card_history, card_version, charges_for, current_card, save_card


def card_document(**changes) -> dict:
    document = copy.deepcopy(DEFAULT_RATE_CARD.as_document())
    document.pop("version")
    document.update(changes)
    return document


# --- the service ---------------------------------------------------------------------------------------------------

def test_an_empty_table_prices_with_the_default_card_as_version_1(app_ctx):
    assert current_card() == DEFAULT_RATE_CARD
    assert card_version(1) == DEFAULT_RATE_CARD
    with pytest.raises(NotFound):
        card_version(2)
    assert [saved.card.version for saved in card_history()] == [1]


def test_saving_makes_the_next_version_keeps_the_old_and_audits(app_ctx):
    first, created = save_card(card_document(tax_rate="0.12"), actor="chief")
    db.session.commit()
    assert created and first.card.version == 2 and first.created_by == "chief"
    # The built-in default was stored as version 1 on the way, so version 1 stays readable for good.
    assert card_version(1) == DEFAULT_RATE_CARD
    assert db.session.scalar(select(RateCardVersion.created_by).where(RateCardVersion.version == 1)) == "system"
    second, created = save_card({**card_document(tax_rate="0.12"), "cod": {"min": "50", "percent": "2.5"}},
                                actor="chief")
    db.session.commit()
    assert created and second.card.version == 3
    assert current_card().cod_min == Decimal("50.00") and card_version(2).cod_min == Decimal("40.00")
    assert card_version(2).tax_rate == Decimal("0.12")
    assert [saved.card.version for saved in card_history()] == [3, 2, 1]
    audit = db.session.scalars(select(AuditEntry).where(AuditEntry.action == "rate_card_saved")
                               .order_by(AuditEntry.id)).all()
    assert [(a.target_type, a.target_id, a.actor) for a in audit] == [("rate_card", "2", "chief"),
                                                                     ("rate_card", "3", "chief")]
    assert audit[0].details == {"version": 2, "previous_version": 1, "changed": ["tax_rate"]}
    assert audit[1].details["changed"] == ["cod.min", "cod.percent"]


def test_saving_the_card_in_force_again_writes_nothing(app_ctx):
    save_card(card_document(tax_rate="0.12"), actor="chief")
    db.session.commit()
    again, created = save_card(card_document(tax_rate="0.120"), actor="chief")
    assert not created and again.card.version == 2
    assert db.session.scalar(select(func.count()).select_from(RateCardVersion)) == 2


def test_a_change_made_to_an_older_version_is_a_conflict(app_ctx):
    save_card({**card_document(tax_rate="0.12"), "version": 1}, actor="chief")
    db.session.commit()
    with pytest.raises(Conflict):
        save_card({**card_document(tax_rate="0.05"), "version": 1}, actor="someone")
    db.session.rollback()
    assert current_card().tax_rate == Decimal("0.12")
    with pytest.raises(ValidationError):
        save_card({**card_document(), "version": "2"}, actor="chief")


def test_bookings_keep_the_version_they_were_priced_with(app_ctx):
    before = charges_for(destination_pincode="560034", weight_kg="1")
    save_card(card_document(slabs={**card_document()["slabs"], "local": {
        "standard": {"first_kg": "0.5", "first_price": "45.00", "per_half_kg": "25.00"},
        "express": {"first_kg": "0.5", "first_price": "60.00", "per_half_kg": "30.00"}}}), actor="chief")
    db.session.commit()
    after = charges_for(destination_pincode="560034", weight_kg="1")
    assert (before.rate_card_version, before.freight) == (1, Decimal("60.00"))
    assert (after.rate_card_version, after.freight) == (2, Decimal("70.00"))
    # the old price can be computed again from the version the booking kept
    again = charges_for(destination_pincode="560034", weight_kg="1", card=card_version(before.rate_card_version))
    assert again == before


def test_the_origin_is_the_sender_pin_else_the_office(app_ctx):
    app_ctx.config["ORIGIN_PINCODE"] = "682016"
    assert charges_for(destination_pincode="682031").zone == "local"
    assert charges_for(destination_pincode="682031", sender_pincode="560001").zone == "national"
    assert charges_for(destination_pincode="686001", sender_pincode="").zone == "state"  # Kottayam: 68, not 682
    assert charges_for(destination_pincode="695001").zone == "national"  # Thiruvananthapuram: 69, not 68
    with pytest.raises(ValidationError) as refused:
        charges_for(destination_pincode="682031", weight_kg="-1", payment="cod")
    assert set(refused.value.fields) == {"weight_kg", "cod_amount"}


def test_origin_pincode_setting_is_checked_when_the_app_starts(monkeypatch):
    from app.config import DevelopmentConfig

    monkeypatch.setenv("ORIGIN_PINCODE", "682 016")
    assert DevelopmentConfig().ORIGIN_PINCODE == "682016"
    monkeypatch.setenv("ORIGIN_PINCODE", "")
    assert DevelopmentConfig().ORIGIN_PINCODE == "560001"
    monkeypatch.setenv("ORIGIN_PINCODE", "Kochi")
    with pytest.raises(RuntimeError, match="ORIGIN_PINCODE"):
        DevelopmentConfig()


def test_postgresql_refuses_to_edit_a_saved_version(app_ctx, database_url):
    if not database_url.startswith("postgresql"):
        pytest.skip("the trigger is PostgreSQL's")
    save_card(card_document(tax_rate="0.12"), actor="chief")
    db.session.commit()
    with pytest.raises(DBAPIError, match="never edited"):
        db.session.execute(text("UPDATE rate_cards SET tax_rate = 0 WHERE version = 2"))
    db.session.rollback()
    assert card_version(2).tax_rate == Decimal("0.12")
