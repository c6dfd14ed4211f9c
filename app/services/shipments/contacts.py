"""Mobile numbers and email addresses: parsing, normalising, masking."""
from __future__ import annotations

from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email
from flask_babel import gettext as _
from phonenumbers import PhoneMetadata

MOBILE_INPUT_MAX = 32
# Numbers that can receive a text. Where a plan cannot tell mobiles from landlines (the USA, Canada) the number
# is accepted: refusing it would refuse every customer there.
MOBILE_TYPES = frozenset({phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE})


class ContactError(ValueError):
    pass


def normalise_mobile(raw: str, default_region: str) -> str:
    """E.164 form of a mobile number written in any common way; ContactError if it is not a mobile number."""
    text = raw.strip()
    if not text:
        raise ContactError(_("Enter a mobile number."))
    if len(text) > MOBILE_INPUT_MAX:
        raise ContactError(_("A mobile number has at most %(max)s characters.", max=MOBILE_INPUT_MAX))
    try:
        number = phonenumbers.parse(text, default_region)
    except phonenumbers.NumberParseException as exc:
        raise ContactError(_("That is not a phone number.")) from exc
    # number_type is UNKNOWN exactly when is_valid_number is false (it runs the same pattern match), so one
    # call answers both questions: a CSV import validates thousands of numbers.
    number_type = phonenumbers.number_type(number)
    if number_type == phonenumbers.PhoneNumberType.UNKNOWN:
        raise ContactError(_("That is not a valid phone number."))
    if number_type not in MOBILE_TYPES:
        raise ContactError(_("That is not a mobile number (it looks like a landline or a service number); "
                             "enter a mobile number."))
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def mobile_pattern(region: str) -> str:
    """A regular expression (ECMA-262 and Python alike) that only mobiles `normalise_mobile` accepts match: the
    region's mobile numbers, written nationally (with or without the national prefix) or with the country code
    (`+91 9876543210`), without spaces inside the number. Built from the numbering plan phonenumbers checks against,
    so the two cannot drift; numbers of other countries and spaced forms are accepted too, but not described."""
    metadata = PhoneMetadata.metadata_for_region(region.upper())
    if metadata is None or metadata.mobile is None or not metadata.mobile.national_number_pattern:
        raise ValueError(f"No numbering plan for region {region!r}")
    national = metadata.mobile.national_number_pattern.replace(r"\d", "[0-9]")  # \d is any script's digit in Python
    prefixes = [rf"\+{metadata.country_code} ?"] + ([metadata.national_prefix] if metadata.national_prefix else [])
    return rf"^(?:{'|'.join(prefixes)})?(?:{national})$"


@lru_cache(maxsize=4096)
def mask_mobile(e164: str) -> str:
    """Only the country code and the last four digits, for public pages (cached: a search answer masks the
    same number once per shipment)."""
    try:
        country = phonenumbers.parse(e164).country_code
    except phonenumbers.NumberParseException:
        return "•" * 6 + e164[-4:]
    prefix = f"+{country}"
    hidden = max(len(e164) - len(prefix) - 4, 0)
    return f"{prefix} {'•' * hidden}{e164[-4:]}"


def format_mobile(e164: str) -> str:
    """"+91 98765 43210": a stored number written the way it is read out and dialled (as stored if it does
    not parse)."""
    try:
        number = phonenumbers.parse(e164)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def normalise_email(raw: str) -> str:
    """A deliverable-looking address (syntax only, no DNS look-up); ContactError if not, with a message in the
    active language (email_validator's own messages are English only)."""
    text = raw.strip()
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        if "@" not in text:
            raise ContactError(_("An email address has an @ sign, as in name@example.com.")) from exc
        raise ContactError(_("That is not a valid email address. Check it, as in name@example.com.")) from exc
    return result.normalized
