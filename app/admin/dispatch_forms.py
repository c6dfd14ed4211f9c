"""Reading dispatch requests: a run asked for (JSON or the page's form), a supervisor's override of a stop, and
the week of overrides to review. Which zone, couriers and days are possible is the dispatch service's call."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import DateField, IntegerField, StringField
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.validators import ValidationError as FieldError

from app.admin.forms import plausible_date
from app.domain.field import CAPACITY_MAX
from app.domain.planning import REASON_MAX, REASON_MIN, parse_iso_week
from app.models.planning import ZONE_NAME_MAX
from app.web.forms import RequestForm, TextListField, strip


class ZoneReferenceField(IntegerField):
    """A zone: its id (a JSON number, or its digits as text) or its name, kept as text. A number field for the
    JSON reader, so `{"zone": 3}` and `{"zone": "North Kochi"}` both read."""

    def process_formdata(self, valuelist: list[str]) -> None:
        self.data = valuelist[0].strip() if valuelist else None

    def _value(self) -> str:
        return self.data or ""


class DispatchForm(RequestForm):
    """POST /admin/dispatch: `{"zone"?, "date"?, "couriers"?: [usernames]}` or the page's form (a couriers box
    left unticked: every courier on shift)."""
    zone = ZoneReferenceField(_l("Zone"), validators=[Optional(), Length(max=ZONE_NAME_MAX)])
    date = DateField(_l("Day"), validators=[Optional(), plausible_date])
    couriers = TextListField(_l("Couriers"))

    def courier_list(self) -> list[str] | None:
        """The couriers asked for; None for every courier on shift (not sent, or no box ticked on the page)."""
        if self.json_fields is not None:
            return list(self.couriers.data) if "couriers" in self.json_fields and self.couriers.data is not None \
                else None
        return list(self.couriers.data) or None


class OverrideForm(RequestForm):
    """POST /admin/runsheets/<id>/stops: `{"tracking_id", "sequence", "reason"}` or the run sheet page's form."""
    tracking_id = StringField(_l("Tracking ID"), filters=[strip], validators=[
        InputRequired(_l("Enter the tracking ID.")), Length(max=40)])
    sequence = IntegerField(_l("Position"), validators=[
        InputRequired(_l("Enter the position on the run sheet, from 1.")), NumberRange(min=1, max=CAPACITY_MAX)])
    reason = StringField(_l("Reason"), filters=[strip], validators=[
        InputRequired(_l("Say why the plan is changed.")), Length(min=REASON_MIN, max=REASON_MAX)])


class OverrideWeekForm(RequestForm):
    """GET /admin/dispatch/overrides?week=2026-W49 (default: this week)."""
    week = StringField(_l("Week"), filters=[strip], validators=[Optional(), Length(max=10)])

    def validate_week(self, field) -> None:
        if field.data:
            try:
                parse_iso_week(field.data)
            except ValueError as error:
                raise FieldError(str(error)) from None
