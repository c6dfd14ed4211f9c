import pytest

from app.services.shipments.contacts import ContactError, mask_mobile, normalise_email, normalise_mobile


@pytest.mark.parametrize("typed", ["+91 98765 43210", "098765 43210", "9876543210", "+919876543210",
                                   "(+91) 98765-43210", " 98765 43210 "])
def test_common_ways_of_writing_one_indian_mobile_normalise_to_e164(typed):
    assert normalise_mobile(typed, "IN") == "+919876543210"


def test_default_region_decides_numbers_without_country_code():
    assert normalise_mobile("07911 123456", "GB") == "+447911123456"


@pytest.mark.parametrize("typed, region", [
    ("080 2222 3333", "IN"),  # a Bengaluru landline
    ("+91 11 2345 6789", "IN"),  # a Delhi landline
    ("1800 180 1961", "IN"),  # a toll-free service number
    ("020 7946 0958", "GB"),  # a London landline
])
def test_landlines_and_service_numbers_are_refused_with_a_clear_message(typed, region):
    with pytest.raises(ContactError, match="not a mobile number"):
        normalise_mobile(typed, region)


def test_numbers_whose_plan_cannot_tell_mobile_from_landline_are_accepted():
    assert normalise_mobile("+1 415 555 2671", "IN") == "+14155552671"


@pytest.mark.parametrize("typed", ["", "   ", "12", "hello", "+91 12345", "9" * 40, "+1 555 0100 000"])
def test_non_numbers_are_refused(typed):
    with pytest.raises(ContactError):
        normalise_mobile(typed, "IN")


def test_mask_keeps_country_code_and_last_four_digits_only():
    masked = mask_mobile("+919876543210")
    assert masked.startswith("+91 ") and masked.endswith("3210")
    assert "98765" not in masked


def test_email_is_validated_without_dns():
    assert normalise_email("  Vikram@Example.com ") == "Vikram@example.com"
    for bad in ["", "no-at-sign", "a@b", "a@@example.com", "a b@example.com"]:
        with pytest.raises(ContactError):
            normalise_email(bad)
