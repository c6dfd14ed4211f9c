"""Pricing rules without an app: zones, chargeable weight, freight, COD fee, tax, rounding, reading rate cards."""
from __future__ import annotations

import copy
import importlib.util
from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from app.domain.pricing import (
    DEFAULT_RATE_CARD,
    SERVICES,
    ZONES,
    PricingError,
    Slab,
    chargeable_weight,
    decimal_value,
    freight_for,
    price,
    read_pricing_inputs,
    read_rate_card,
    zone_between,
)

D = Decimal
MIGRATION = Path(__file__).resolve().parents[1] / "migrations" / "versions" / "0017_rate_cards.py"


def quote(card=DEFAULT_RATE_CARD, *, origin_pin="560001", destination_pin="560034", service="standard",
          weight_kg=None, length_cm=None, width_cm=None, height_cm=None, payment="prepaid", cod_amount=None):
    return price(card, origin_pin=origin_pin, destination_pin=destination_pin, service=service, weight_kg=weight_kg,
                 length_cm=length_cm, width_cm=width_cm, height_cm=height_cm, payment=payment, cod_amount=cod_amount)


# --- zones ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("origin, destination, zone", [
    ("560001", "560034", "local"),      # Bengaluru to Bengaluru: one sorting district (560)
    ("560001", "563101", "state"),      # Bengaluru to Kolar: 56x, Karnataka
    ("560001", "682031", "national"),   # Bengaluru to Kochi
    ("682 031", "682016", "local"),     # a PIN written with a space
    ("110001", "110001", "local"),
    ("400001", "411001", "national"),   # Mumbai to Pune: the rule is the digits (40, 41), not the map
])
def test_zone_between_two_pin_codes(origin, destination, zone):
    assert zone_between(origin, destination) == zone


@pytest.mark.parametrize("bad", ["56000", "5600011", "060001", "ABCDEF", "", "560-001"])
def test_zone_between_refuses_what_is_not_a_pin_code(bad):
    with pytest.raises(ValueError):
        zone_between("560001", bad)


# --- chargeable weight ---------------------------------------------------------------------------------------------

def test_volumetric_weight_wins_when_the_box_is_large_and_light():
    # 40 × 30 × 20 cm ÷ 5000 = 4.8 kg, more than the 2 kg it weighs: 5.0 kg, rounded up to the half kilogram
    assert chargeable_weight(D("2"), D(40), D(30), D(20), 5000, D("0.5")) == D("5.0")
    charges = quote(weight_kg=D("2"), length_cm=D(40), width_cm=D(30), height_cm=D(20))
    assert charges.as_dict()["chargeable_weight_kg"] == "5.0"


def test_actual_weight_wins_when_heavier_and_is_rounded_up_to_the_half_kilogram():
    assert chargeable_weight(D("6.2"), D(40), D(30), D(20), 5000, D("0.5")) == D("6.5")
    assert chargeable_weight(D("2.01"), None, None, None, 5000, D("0.5")) == D("2.5")
    assert chargeable_weight(D("2.5"), None, None, None, 5000, D("0.5")) == D("2.5")
    assert chargeable_weight(D("0.1"), None, None, None, 5000, D("0.5")) == D("0.5")


def test_a_missing_weight_counts_as_the_first_slab():
    assert chargeable_weight(None, None, None, None, 5000, D("1.0")) == D("1.0")
    charges = quote()
    assert charges.chargeable_weight_kg == D("0.5") and charges.freight == D("40.00")
    # ... and the volumetric weight still counts when it is more
    assert chargeable_weight(None, D(40), D(30), D(20), 5000, D("0.5")) == D("5.0")


def test_dimensions_count_only_all_three_together_and_the_divisor_matters():
    assert chargeable_weight(D(1), D(40), None, D(20), 5000, D("0.5")) == D("1.0")
    assert chargeable_weight(D(1), D(40), D(30), D(20), 4000, D("0.5")) == D("6.0")  # 24000 ÷ 4000
    with pytest.raises(ValueError):
        chargeable_weight(D(1), D(40), D(30), D(20), 0, D("0.5"))


# --- freight, COD fee, tax, total ------------------------------------------------------------------------------------

def test_freight_is_the_first_slab_then_each_further_half_kilogram_or_part():
    slab = Slab(D("0.5"), D("40.00"), D("20.00"))
    assert freight_for(slab, D("0.5")) == D("40.00")
    assert freight_for(slab, D("1.0")) == D("60.00")
    assert freight_for(slab, D("5.0")) == D("220.00")  # 40 + 9 × 20
    heavy_first = Slab(D("2.0"), D("100.00"), D("15.00"))
    assert freight_for(heavy_first, D("0.5")) == D("100.00")  # under the first slab: its price
    assert freight_for(heavy_first, D("3.5")) == D("145.00")


def test_the_worked_example_of_the_readme():
    charges = quote(weight_kg=D("2"), length_cm=D(40), width_cm=D(30), height_cm=D(20), payment="cod",
                    cod_amount=D("1500"))
    assert charges.as_dict() == {"zone": "local", "chargeable_weight_kg": "5.0", "freight": "220.00",
                                 "cod_fee": "40.00", "tax": "46.80", "total": "306.80", "currency": "INR",
                                 "rate_card_version": 1}


@pytest.mark.parametrize("cod_amount, fee", [
    (D("500"), "40.00"),      # 2 % is 10.00: the minimum, 40.00
    (D("2000"), "40.00"),     # 2 % is exactly the minimum
    (D("5000"), "100.00"),    # 2 % is more than the minimum
    (D("12345.67"), "246.91"),  # 246.9134 rounded to the paisa
])
def test_cod_fee_is_the_larger_of_the_minimum_and_the_percentage(cod_amount, fee):
    charges = quote(payment="cod", cod_amount=cod_amount)
    assert charges.as_dict()["cod_fee"] == fee


def test_prepaid_has_no_cod_fee_and_tax_is_on_freight_plus_cod_fee():
    prepaid = quote(destination_pin="682031", service="express")
    assert prepaid.as_dict()["cod_fee"] == "0.00"
    assert prepaid.freight == D("120.00") and prepaid.tax == D("21.60") and prepaid.total == D("141.60")
    cod = quote(destination_pin="682031", service="express", payment="cod", cod_amount=D("5000"))
    assert cod.tax == D("39.60")  # 18 % of 120.00 + 100.00
    assert cod.total == cod.freight + cod.cod_fee + cod.tax == D("259.60")


def test_amounts_landing_on_half_a_paisa_round_half_up():
    """40.25 × 0.18 = 7.245 exactly: half up gives 7.25 (banker's rounding, Decimal's default, gives 7.24).
    1234.25 × 2 % = 24.685: 24.69 (half even would say 24.68)."""
    assert D("7.245").quantize(D("0.01")) == D("7.24") and D("24.685").quantize(D("0.01")) == D("24.68")
    card = replace(DEFAULT_RATE_CARD, cod_min=D("20.00"),
                   slabs={**DEFAULT_RATE_CARD.slabs, ("local", "standard"): Slab(D("0.5"), D("40.25"), D("20.00"))})
    charges = quote(card)
    assert charges.as_dict()["tax"] == "7.25" and charges.as_dict()["total"] == "47.50"
    cod = quote(card, payment="cod", cod_amount=D("1234.25"))
    assert cod.as_dict()["cod_fee"] == "24.69"
    assert cod.as_dict()["tax"] == "11.69"  # (40.25 + 24.69) × 0.18 = 11.6892
    assert cod.as_dict()["total"] == "76.63"


def test_an_unknown_destination_is_priced_as_national():
    charges = quote(destination_pin=None)
    assert charges.zone == "national" and charges.freight == D("75.00")


def test_charges_as_dict_are_strings_for_money_and_weight():
    body = quote(weight_kg=D("12.3")).as_dict()
    assert body["chargeable_weight_kg"] == "12.5"
    assert all(isinstance(body[k], str) and body[k].count(".") == 1 and len(body[k].split(".")[1]) == 2
               for k in ("freight", "cod_fee", "tax", "total"))
    assert isinstance(body["rate_card_version"], int)


# --- the default card ------------------------------------------------------------------------------------------------

def test_the_default_card_is_complete_and_dearer_for_farther_and_faster():
    card = DEFAULT_RATE_CARD
    assert card.version == 1 and card.currency == "INR" and card.tax_rate == D("0.18")
    assert card.volumetric_divisor == 5000
    assert set(card.slabs) == {(zone, service) for zone in ZONES for service in SERVICES}
    for service in SERVICES:
        prices = [card.slab(zone, service).first_price for zone in ZONES]
        assert prices == sorted(prices) and len(set(prices)) == 3
    for zone in ZONES:
        assert card.slab(zone, "express").first_price > card.slab(zone, "standard").first_price
    assert card.slab("local", "standard") == Slab(D("0.5"), D("40.00"), D("20.00"))


def test_migration_0017_stores_the_default_card_as_version_1():
    spec = importlib.util.spec_from_file_location("migration_0017", MIGRATION)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    stored = migration.VERSION_1
    document = {"currency": stored["currency"], "tax_rate": stored["tax_rate"],
                "volumetric_divisor": stored["volumetric_divisor"],
                "cod": {"min": stored["cod_min"], "percent": stored["cod_percent"]}, "slabs": stored["slabs"]}
    assert read_rate_card(document, version=stored["version"]) == DEFAULT_RATE_CARD


# --- reading a rate card ---------------------------------------------------------------------------------------------

def document():
    return copy.deepcopy(DEFAULT_RATE_CARD.as_document())


def test_a_card_reads_back_from_its_document_and_numbers_may_be_json_numbers():
    assert read_rate_card(document(), version=1) == DEFAULT_RATE_CARD
    numbers = document()
    numbers.update(tax_rate=0.18, volumetric_divisor=5000.0, cod={"min": 40, "percent": 2})
    numbers["slabs"]["local"]["standard"] = {"first_kg": 0.5, "first_price": 40, "per_half_kg": 20.0}
    assert read_rate_card(numbers, version=1) == DEFAULT_RATE_CARD
    assert read_rate_card({**document(), "currency": "inr"}, version=1).currency == "INR"


def _broken(path: str, value):
    doc = document()
    *parents, last = path.split(".")
    target = doc
    for name in parents:
        target = target[name]
    if value is KeyError:
        del target[last]
    else:
        target[last] = value
    return doc


@pytest.mark.parametrize("path, value, field", [
    ("slabs.local.standard.first_price", "-40.00", "slabs.local.standard.first_price"),
    ("slabs.state.express.per_half_kg", -1, "slabs.state.express.per_half_kg"),
    ("slabs.national.standard.first_price", "40.005", "slabs.national.standard.first_price"),
    ("slabs.local.express.first_kg", "0.7", "slabs.local.express.first_kg"),
    ("slabs.local.express.first_kg", "0", "slabs.local.express.first_kg"),
    ("slabs.local.standard.first_price", "NaN", "slabs.local.standard.first_price"),
    ("slabs.local.standard.first_price", "1e3", "slabs.local.standard.first_price"),
    ("slabs.local.standard.first_price", True, "slabs.local.standard.first_price"),
    ("slabs.local.standard.first_price", KeyError, "slabs.local.standard.first_price"),
    ("slabs.local.standard.weight", "1", "slabs.local.standard.weight"),
    ("slabs.metro", {"standard": {"first_kg": "0.5", "first_price": "1", "per_half_kg": "1"}}, "slabs.metro"),
    ("slabs.local.overnight", {"first_kg": "0.5", "first_price": "1", "per_half_kg": "1"},
     "slabs.local.overnight"),
    ("slabs.state", KeyError, "slabs.state"),
    ("slabs.state", [], "slabs.state"),
    ("slabs.local.express", KeyError, "slabs.local.express"),
    ("tax_rate", "1.01", "tax_rate"),
    ("tax_rate", "-0.18", "tax_rate"),
    ("tax_rate", "18%", "tax_rate"),
    ("tax_rate", KeyError, "tax_rate"),
    ("volumetric_divisor", 0, "volumetric_divisor"),
    ("volumetric_divisor", "5000.5", "volumetric_divisor"),
    ("volumetric_divisor", 1_000_000, "volumetric_divisor"),
    ("cod.min", "-1", "cod.min"),
    ("cod.percent", "101", "cod.percent"),
    ("cod.fixed", "10", "cod.fixed"),
    ("cod", "2%", "cod"),
    ("currency", "USD", "currency"),
    ("surcharge", "10", "surcharge"),
])
def test_every_bad_value_of_a_card_is_named(path, value, field):
    with pytest.raises(PricingError) as refused:
        read_rate_card(_broken(path, value), version=2)
    assert field in refused.value.fields, refused.value.fields


def test_a_card_that_is_not_an_object_is_refused():
    for bad in ([], "card", None, 5):
        with pytest.raises(PricingError):
            read_rate_card(bad, version=2)


def test_the_read_only_keys_of_a_document_are_ignored():
    doc = {**document(), "version": 7, "created_at": "2026-12-01T10:00:00Z", "created_by": "admin"}
    assert read_rate_card(doc, version=3).version == 3


def test_differences_name_the_changed_fields():
    changed = replace(DEFAULT_RATE_CARD, tax_rate=D("0.12"), version=2,
                      slabs={**DEFAULT_RATE_CARD.slabs, ("state", "express"): Slab(D("0.5"), D("90.00"), D("45.00"))})
    assert changed.differences(DEFAULT_RATE_CARD) == ["tax_rate", "slabs.state.express.first_price"]
    assert replace(DEFAULT_RATE_CARD, version=5).differences(DEFAULT_RATE_CARD) == []


# --- reading a booking's pricing fields ----------------------------------------------------------------------------

def test_pricing_inputs_have_defaults_and_accept_text_numbers_and_decimals():
    inputs = read_pricing_inputs()
    assert (inputs.service, inputs.payment, inputs.weight_kg, inputs.destination_pin) == \
        ("standard", "prepaid", None, None)
    inputs = read_pricing_inputs(destination_pincode="682 031", service="Express", weight_kg="2.5", length_cm=40,
                                 width_cm=D("30"), height_cm=20.5, payment="COD", cod_amount="1500")
    assert inputs.destination_pin == "682031" and inputs.service == "express" and inputs.payment == "cod"
    assert (inputs.weight_kg, inputs.length_cm, inputs.width_cm, inputs.height_cm, inputs.cod_amount) == \
        (D("2.5"), D(40), D(30), D("20.5"), D(1500))
    assert read_pricing_inputs(weight_kg="", service=" ").weight_kg is None


@pytest.mark.parametrize("given, field", [
    ({"destination_pincode": "68203"}, "destination_pincode"),
    ({"sender_pincode": "ABCDEF"}, "sender_pincode"),
    ({"service": "overnight"}, "service"),
    ({"payment": "card"}, "payment"),
    ({"weight_kg": "0"}, "weight_kg"),
    ({"weight_kg": "-2"}, "weight_kg"),
    ({"weight_kg": "two"}, "weight_kg"),
    ({"weight_kg": True}, "weight_kg"),
    ({"weight_kg": "1.2345"}, "weight_kg"),
    ({"weight_kg": "5000"}, "weight_kg"),
    ({"length_cm": "40", "width_cm": "30"}, "height_cm"),
    ({"length_cm": "40", "width_cm": "0", "height_cm": "20"}, "width_cm"),
    ({"payment": "cod"}, "cod_amount"),
    ({"payment": "cod", "cod_amount": "0"}, "cod_amount"),
    ({"cod_amount": "1500"}, "cod_amount"),
])
def test_every_unusable_pricing_field_is_named(given, field):
    with pytest.raises(PricingError) as refused:
        read_pricing_inputs(**given)
    assert field in refused.value.fields


def test_decimal_values_refuse_what_is_not_a_plain_number():
    assert decimal_value("12.50") == D("12.50") and decimal_value(0.1) == D("0.1") and decimal_value(3) == D(3)
    for bad in ("", " ", "1e3", "NaN", "Infinity", "1_000", "12,50", "0x10", True, None, [], D("NaN")):
        assert decimal_value(bad) is None, bad
