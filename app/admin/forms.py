from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask import request
from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import DateField, IntegerField, SelectChoice, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional

from app.errors import ValidationError
from app.forms import json_object_body, strip
from app.services.dashboard import ShipmentFilter
from app.services.status import ALL_STATUSES

SORTS = [SelectChoice("recent", "Newest update first"), SelectChoice("oldest", "Oldest update first")]


class ShipmentFilterForm(FlaskForm):
    """The dashboard's search, filter, sort and page, read from the query string (GET, no CSRF)."""

    class Meta:
        csrf = False

    q = StringField("Search", filters=[strip], validators=[Optional(), Length(max=100)])
    status = SelectField("Status", choices=[SelectChoice("", "All statuses"), *map(SelectChoice, ALL_STATUSES)],
                         default="", validators=[Optional()])
    sort = SelectField("Sort by", choices=SORTS, default="recent")
    page = IntegerField("Page", default=1, validators=[Optional(), NumberRange(min=1, max=1_000_000)])
    booked_from = DateField("Booked from", validators=[Optional()])
    booked_to = DateField("Booked until", validators=[Optional()])

    def validate(self, extra_validators=None) -> bool:
        if not super().validate(extra_validators):
            return False
        if self.booked_from.data and self.booked_to.data and self.booked_to.data < self.booked_from.data:
            self.booked_to.errors = ["Must not be before the start date."]
            return False
        return True

    def to_filter(self, timezone: str = "UTC") -> ShipmentFilter:
        """The filter, with the booking dates read as whole days in `timezone` (the display time zone)."""
        zone = ZoneInfo(timezone)
        since = datetime.combine(self.booked_from.data, time(), zone) if self.booked_from.data else None
        before = (datetime.combine(self.booked_to.data + timedelta(days=1), time(), zone)
                  if self.booked_to.data else None)
        return ShipmentFilter(text=self.q.data or "", status=self.status.data or None,
                              newest_first=self.sort.data != "oldest", page=self.page.data or 1,
                              booked_since=since, booked_before=before)

    def field_errors(self) -> dict[str, str]:
        return {name: messages[0] for name, messages in self.errors.items() if messages}



def label_batch_request() -> tuple[list[str], str | None]:
    """The tracking IDs and label size of a batch-label request: JSON `{"tracking_ids": [...], "size"?}` or the
    dashboard's selection form (repeated `tracking_ids` fields, or one field of IDs separated by spaces/commas)."""
    if request.is_json:
        body = json_object_body()
        ids, size = body.get("tracking_ids"), body.get("size")
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            raise ValidationError(fields={"tracking_ids": "Must be a list of tracking IDs."})
        if size is not None and not isinstance(size, str):
            raise ValidationError(fields={"size": "Must be a string."})
        return ids, size
    ids = [part for value in request.form.getlist("tracking_ids") for part in value.replace(",", " ").split()]
    return ids, request.form.get("size") or None


class ImportForm(FlaskForm):
    """The CSV upload (its CSRF token is checked for every POST by app.auth.guard)."""

    class Meta:
        csrf = False

    file = FileField("CSV file of bookings")
