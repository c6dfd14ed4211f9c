"""Reading run sheet requests: a new or extended run sheet (JSON or the page's form) and the list's filters."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import DateField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import InputRequired, Length, Optional
from wtforms.validators import ValidationError as FieldError
from wtforms.widgets import TextArea

from app.admin.forms import plausible_date, tracking_ids_in
from app.models.user import USERNAME_MAX
from app.services.field.runsheets import MAX_IDS
from app.web.forms import RequestForm, TextListField, strip


class TrackingIdsField(TextListField, TextAreaField):
    """Tracking IDs: a JSON array of strings, or the page's textarea (one a line, or separated by commas or
    spaces). A list field for the JSON reader, a multi-line field for the text checks."""

    widget = TextArea()

    def _value(self) -> str:
        return "\n".join(self.data or [])


class RunSheetForm(RequestForm):
    """POST /admin/runsheets: `{"courier", "tracking_ids": [...], "date"?}` or the page's form. Who is a courier,
    which IDs go on and which days are open is the run sheets service's call."""
    courier = SelectField(_l("Courier"), validate_choice=False, filters=[strip], validators=[
        InputRequired(_l("Choose the courier.")), Length(max=USERNAME_MAX)])
    tracking_ids = TrackingIdsField(_l("Tracking IDs, in the order of the round"))
    date = DateField(_l("Day"), validators=[Optional(), plausible_date])

    def validate_tracking_ids(self, field) -> None:
        ids = self.tracking_id_list()
        if not ids:
            raise FieldError("Give at least one tracking ID.")
        if len(ids) > MAX_IDS:
            raise FieldError(f"At most {MAX_IDS} tracking IDs at once.")

    def tracking_id_list(self) -> list[str]:
        return tracking_ids_in(self.tracking_ids.data)

    def offer_couriers(self, usernames: list[str]) -> None:
        """The page's choice of courier: the active couriers."""
        self.courier.choices = [SelectChoice("", _l("Choose a courier")), *map(SelectChoice, usernames)]


class RunSheetFilterForm(RequestForm):
    """GET /admin/runsheets: `date` (YYYY-MM-DD, default today) and `courier` (a username), both optional."""
    date = DateField(_l("Day"), validators=[Optional(), plausible_date])
    courier = StringField(_l("Courier"), filters=[strip], validators=[Optional(), Length(max=USERNAME_MAX)])
