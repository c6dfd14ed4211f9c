"""The parcel and payment rules every way of booking shares (app/domain/parcels.py), without an app."""
from decimal import Decimal

import pytest

from app.domain.parcels import Parcel, check_parcel

COD_MAX = Decimal("50000")


def check(destination: str = "", **raw):
    return check_parcel(raw, cod_max=COD_MAX, destination=destination)


def test_nothing_given_is_a_prepaid_standard_single_piece():
    parcel, problems = check()
    assert problems == {} and parcel == Parcel()
    assert (parcel.pieces, parcel.service, parcel.payment, parcel.pickup) == (1, "standard", "prepaid", False)


def test_json_numbers_form_text_and_csv_text_mean_the_same():
    from_json, _ = check(weight_kg=1.25, length_cm=40, width_cm=30, height_cm=20, pieces=3, declared_value=1250,
                         payment="cod", cod_amount=1250, pickup=True)
    from_text, _ = check(weight_kg="1.25", length_cm="40", width_cm="30", height_cm="20", pieces="3",
                         declared_value="1,250.00", payment="COD", cod_amount="₹ 1250", pickup="yes")
    assert from_json == from_text
    assert from_json.as_dict()["cod_amount"] == "1250.00" and from_json.as_dict()["weight_kg"] == "1.250"
    assert from_json.pickup is True and from_json.pieces == 3


@pytest.mark.parametrize(("raw", "field"), [
    ({"weight_kg": "0"}, "weight_kg"), ({"weight_kg": "100.5"}, "weight_kg"), ({"weight_kg": "heavy"}, "weight_kg"),
    ({"weight_kg": "0.004"}, "weight_kg"), ({"weight_kg": "NaN"}, "weight_kg"), ({"weight_kg": True}, "weight_kg"),
    ({"declared_value": "10.005"}, "declared_value"), ({"payment": "cod", "cod_amount": 0.1 + 0.2}, "cod_amount"),
    ({"length_cm": "0.5", "width_cm": "1", "height_cm": "1"}, "length_cm"),
    ({"length_cm": "301", "width_cm": "1", "height_cm": "1"}, "length_cm"),
    ({"length_cm": "10", "width_cm": "10"}, "height_cm"),
    ({"pieces": "0"}, "pieces"), ({"pieces": "51"}, "pieces"), ({"pieces": "1.5"}, "pieces"),
    ({"declared_value": "-1"}, "declared_value"), ({"contents": "x" * 201}, "contents"),
    ({"service": "overnight"}, "service"), ({"payment": "card"}, "payment"), ({"payment": 1}, "payment"),
    ({"payment": "cod"}, "cod_amount"), ({"payment": "cod", "cod_amount": "0"}, "cod_amount"),
    ({"payment": "cod", "cod_amount": "50000.01"}, "cod_amount"),
    ({"payment": "cod", "cod_amount": "1500", "declared_value": "1000"}, "cod_amount"),
    ({"cod_amount": "100"}, "cod_amount"), ({"pickup": "perhaps"}, "pickup"),
    ({"sender_pincode": "012345"}, "sender_pincode"), ({"destination_pincode": "68201"}, "destination_pincode"),
    ({"sender_address": "x" * 201}, "sender_address"), ({"contents": 5}, "contents"),
])
def test_each_bad_value_names_its_field(raw, field):
    parcel, problems = check(**raw)
    assert field in problems, problems
    assert parcel == Parcel()


def test_measures_are_rounded_half_up_to_the_gram_and_the_millimetre_money_is_not():
    parcel, problems = check(weight_kg="1.2345", length_cm=10.25, width_cm="10.24", height_cm="300.04")
    assert problems == {}
    assert (parcel.weight_kg, parcel.length_cm, parcel.width_cm, parcel.height_cm) == \
        (Decimal("1.235"), Decimal("10.3"), Decimal("10.2"), Decimal("300.0"))
    assert "paisa" in check(declared_value="99.999")[1]["declared_value"]


def test_cash_on_delivery_up_to_the_ceiling_and_the_declared_value():
    parcel, problems = check(payment="cod", cod_amount="50000", declared_value="50000")
    assert problems == {} and parcel.cod_amount == Decimal("50000.00")
    parcel, problems = check(payment="cod", cod_amount="999.5")
    assert problems == {} and str(parcel.cod_amount) == "999.50"


def test_the_destination_pincode_comes_from_the_destination_when_not_given():
    assert check("12 MG Road, Kochi 682 016")[0].destination_pincode == "682016"
    assert check("Flat 4, 560001 Bengaluru 682016")[0].destination_pincode == "682016"  # the last one
    assert check("Kochi 682016", destination_pincode="110001")[0].destination_pincode == "110001"
    assert check("Kochi")[0].destination_pincode is None
    assert check("call 98765432101")[0].destination_pincode is None  # digits of a longer number are no PIN code

