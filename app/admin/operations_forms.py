"""The operations forms: the promise table (days by service and zone pair) and an alert's acknowledgement. The
values are checked by the services (app.services.operations); the forms only read them, from the page or JSON."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import IntegerField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from app.domain.promises import PAIRS
from app.models.alert import ALERT_NOTE_MAX
from app.web.forms import RequestForm, strip

ZONE_LABELS = {"local": _l("Local"), "state": _l("Within the state"), "national": _l("National")}
SERVICE_LABELS = {"standard": _l("Standard"), "express": _l("Express")}


def days_field(service: str, zone: str) -> str:
    """A pair's field name, as the JSON body nests it: {"days": {"standard": {"local": 1}}}."""
    return f"days.{service}.{zone}"


class PromiseFormBase(RequestForm):
    """The page posts every pair; JSON sends only the pairs it changes."""

    nested_json = True

    @classmethod
    def for_days(cls, days: dict[tuple[str, str], int]) -> PromiseFormBase:
        return cls(formdata=None, data={days_field(*pair): value for pair, value in days.items()})

    def days(self, service: str, zone: str):
        return self[days_field(service, zone)]

    def fields_in_order(self) -> list:
        return [self.days(*pair) for pair in PAIRS]

    def sent(self) -> dict[tuple[str, str], int | None]:
        """The pairs this request sent, with their days (None: left blank on the page)."""
        return {pair: self.days(*pair).data for pair in PAIRS if self.days(*pair).raw_data}


def _days_fields() -> dict:
    return {days_field(service, zone): IntegerField(
        _l("%(service)s, %(zone)s: days", service=SERVICE_LABELS[service], zone=ZONE_LABELS[zone]),
        validators=[Optional()]) for service, zone in PAIRS}


# Built with its dotted names in one go: a form reads its fields' names when its class is made.
PromiseForm = type("PromiseForm", (PromiseFormBase,), _days_fields())


class AcknowledgeForm(RequestForm):
    note = TextAreaField(_l("Note"), filters=[strip], validators=[
        DataRequired(_l("Say what was done about it.")),
        Length(max=ALERT_NOTE_MAX, message=_l("At most %(max)d characters."))])
