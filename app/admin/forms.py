from flask_wtf import FlaskForm
from wtforms import IntegerField, SelectChoice, SelectField, StringField
from wtforms.validators import Length, NumberRange, Optional

from app.forms import strip
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

    def to_filter(self) -> ShipmentFilter:
        return ShipmentFilter(text=self.q.data or "", status=self.status.data or None,
                              newest_first=self.sort.data != "oldest", page=self.page.data or 1)

    def field_errors(self) -> dict[str, str]:
        return {name: messages[0] for name, messages in self.errors.items() if messages}
