"""Languages the customer side speaks, and how text, dates and estimates are said in each.

No request objects here: pages pick the locale per request (app.i18n.babel), the outbox worker per shipment (the
language it was booked in). Everything is formatted with Babel for the active locale, in DISPLAY_TIMEZONE.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from functools import cache

from babel import Locale
from babel.dates import format_date, format_time
from babel.dates import format_datetime as babel_datetime
from babel.numbers import format_currency, format_decimal
from babel.support import NullTranslations
from flask_babel import force_locale, get_locale, get_translations, gettext, lazy_gettext

from app.domain.status import Status
from app.domain.timeutil import as_utc, to_local

# Code → the language's own name (shown in that language by the switcher, so everyone can find theirs).
LANGUAGES: dict[str, str] = {"en": "English", "hi": "हिन्दी"}
DEFAULT_LANGUAGE = "en"

# Status names as customers read them. Stored statuses stay English (they are the API's values); each is also
# its own msgid (status_label translates it with the active catalogue, not through a lazy string).
STATUS_LABELS = {
    Status.BOOKED: lazy_gettext("Booked"),
    Status.PICKED_UP: lazy_gettext("Picked Up"),
    Status.IN_TRANSIT: lazy_gettext("In Transit"),
    Status.OUT_FOR_DELIVERY: lazy_gettext("Out for Delivery"),
    Status.DELIVERED: lazy_gettext("Delivered"),
    Status.DELIVERY_ATTEMPTED: lazy_gettext("Delivery Attempted"),
    Status.ON_HOLD: lazy_gettext("On Hold"),
    Status.RTO_INITIATED: lazy_gettext("RTO Initiated"),
    Status.RTO_IN_TRANSIT: lazy_gettext("RTO In Transit"),
    Status.RETURNED_TO_SENDER: lazy_gettext("Returned to Sender"),
    Status.CANCELLED: lazy_gettext("Cancelled"),
}


# The one location Waybill writes itself (a booking's first event,
# app.services.shipments.booking.ORIGIN_LOCATION): stored in English like the statuses, shown in the reader's
# language. Staff type every other location as it is shown.
LOCATION_LABELS = {"Origin Facility": lazy_gettext("Origin Facility")}


def language_or_default(code: str | None) -> str:
    """`code` when it is a language we speak, else the default."""
    return code if code in LANGUAGES else DEFAULT_LANGUAGE


# The language a message is being written in and its catalogue (None: look both up per call, as pages do).
_SPEAKING: ContextVar[tuple[str, NullTranslations] | None] = ContextVar("waybill_speaking", default=None)


@cache
def babel_locale(code: str) -> Locale:
    """The Babel locale of a language we speak, parsed once (every format call would parse the code again)."""
    return Locale.parse(code)


@contextmanager
def speaking(code: str | None) -> Iterator[None]:
    """Write in `code` (else the default language) for the duration: Flask-Babel's force_locale, with the
    catalogue looked up once rather than by each of the few dozen gettext calls an email's templates make."""
    language = language_or_default(code)
    with force_locale(language):
        token = _SPEAKING.set((language, get_translations()))
        try:
            yield
        finally:
            _SPEAKING.reset(token)


def translations() -> NullTranslations:
    """The catalogue to translate with now: the one `speaking` chose, else the request's."""
    chosen = _SPEAKING.get()
    return chosen[1] if chosen is not None else get_translations()


def current_language() -> str:
    """The active locale's language code ("en" outside any request or forced locale)."""
    chosen = _SPEAKING.get()
    if chosen is not None:
        return chosen[0]
    locale = get_locale()
    return language_or_default(locale.language if locale is not None else None)


def status_label(status: str) -> str:
    """A status name in the active language (unknown names are shown as they are)."""
    if status not in STATUS_LABELS:
        return str(status)
    return translations().ugettext(str(status))


def location_label(location: str) -> str:
    """A location in the active language: Waybill's own default location translated, any other as typed."""
    if location not in LOCATION_LABELS:
        return location
    return translations().ugettext(location)


# How a day is written, everywhere a date is shown: "01 Dec 2026", "01 दिस॰ 2026".
_DAY = "dd MMM y"


def format_local_time(value: datetime | None, tz_name: str) -> str:
    """"01 Dec 2026, 14:30 IST" (or "01 दिस॰ 2026, 14:30 IST"): a stored UTC time in `tz_name`, per locale."""
    if value is None:
        return ""
    local = _local(value, tz_name)
    return f"{babel_datetime(local, f'{_DAY}, HH:mm', locale=babel_locale(current_language()))} {local.tzname()}"


def format_local_date(value: datetime | None, tz_name: str, language: str | None = None) -> str:
    """"01 Dec 2026" (or "01 दिस॰ 2026"): the day of a stored UTC time in `tz_name`, in `language` (a document
    with a language of its own, whatever the request's) or else the active locale's."""
    if value is None:
        return ""
    code = language_or_default(language) if language is not None else current_language()
    return format_date(_local(value, tz_name), _DAY, locale=babel_locale(code))


# Amounts and weights on documents read across India (labels): Indian digit grouping, whatever the language.
_INDIA = "en_IN"
_PAISA = Decimal("0.01")


def format_rupees(amount: Decimal) -> str:
    """"₹1,250.00", "₹1,25,000.00": an amount in rupees, rounded half up to the paisa (design rule 11)."""
    return format_currency(amount.quantize(_PAISA, rounding=ROUND_HALF_UP), "INR", locale=_INDIA)


def format_weight_kg(weight: Decimal) -> str:
    """"2.5 kg", "1,250 kg", "0.125 kg": a weight in kilograms to the gram, without trailing zeros."""
    return f"{format_decimal(weight, format='#,##0.###', locale=_INDIA)} kg"


def _local(value: datetime, tz_name: str) -> datetime:
    return to_local(value, tz_name) if tz_name != "UTC" else as_utc(value)


def format_estimate(expected: datetime, latest: datetime, tz_name: str) -> str:
    """"Thu 26 Nov, by 6 PM": the expected day, and the hour by which the parcel should be there (the window's
    end, rounded up to the hour: a promise, not a guess). A later day for that hour is named too."""
    language = babel_locale(current_language())
    expected_local = to_local(expected, tz_name)
    latest_local = to_local(latest, tz_name)
    if latest_local.minute or latest_local.second or latest_local.microsecond:
        latest_local = latest_local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    day = format_date(expected_local, "EEE d MMM", locale=language)
    hour = format_time(latest_local, "h a", locale=language)
    if latest_local.date() != expected_local.date():
        hour = f"{format_date(latest_local, 'EEE d MMM', locale=language)}, {hour}"
    return gettext("%(day)s, by %(time)s", day=day, time=hour)
