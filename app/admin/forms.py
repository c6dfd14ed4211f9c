from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import (
    DateField,
    FloatField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectChoice,
    SelectField,
    StringField,
    TimeField,
)
from wtforms.validators import InputRequired, Length, NumberRange, Optional
from wtforms.validators import ValidationError as FieldError

from app.domain.corrections import EDITABLE_FIELDS
from app.domain.field import Vehicle
from app.domain.roles import ROLES, Role
from app.domain.status import ALL_STATUSES
from app.domain.timeutil import local_day_start
from app.domain.tracking_ids import normalise_tracking_id
from app.errors import ValidationError
from app.models.audit_entry import ACTOR_MAX, TARGET_ID_MAX, TARGET_TYPE_MAX
from app.models.user import USERNAME_MAX
from app.services.field.couriers import CourierFields
from app.services.shipments.dashboard import ShipmentFilter
from app.services.shipments.evidence_images import MAX_UPLOAD_BYTES
from app.services.staff.audit import ACTIONS, AUDIT_MAX_PAGE, AuditFilter
from app.services.staff.passwords import PASSWORD_MAX
from app.services.staff.users import USERNAME_RULE, UserChanges
from app.shipments.forms import NumberText, ParcelFields, StatusUpdateForm
from app.web.forms import AppForm, RequestForm, TextListField, TrueFalseField, strip
from app.web.templating import action_label

# Dates outside these bounds are typing mistakes, and would overflow when turned into UTC instants.
EARLIEST_DATE, LATEST_DATE = date(1970, 1, 1), date(9998, 12, 31)


def plausible_date(form, field) -> None:
    if field.data is not None and not EARLIEST_DATE <= field.data <= LATEST_DATE:
        raise FieldError(gettext("Enter a date from %(first)s to %(last)s.", first=EARLIEST_DATE.isoformat(),
                                 last=LATEST_DATE.isoformat()))


SORTS = [SelectChoice("recent", _l("Newest update first")), SelectChoice("oldest", _l("Oldest update first"))]


class ShipmentFilterForm(AppForm):
    """The dashboard's search, filter, sort and page, read from the query string (GET, no CSRF)."""

    class Meta:
        csrf = False

    q = StringField(_l("Search"), filters=[strip], validators=[Optional(), Length(max=100)])
    status = SelectField(_l("Status"), choices=[SelectChoice("", _l("All statuses")), *map(SelectChoice, ALL_STATUSES)],
                         default="", validators=[Optional()])
    sort = SelectField(_l("Sort by"), choices=SORTS, default="recent")
    page = IntegerField(_l("Page"), default=1, validators=[Optional(), NumberRange(min=1, max=1_000_000)])
    booked_from = DateField(_l("Booked from"), validators=[Optional(), plausible_date])
    booked_to = DateField(_l("Booked until"), validators=[Optional(), plausible_date])

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


class LabelBatchForm(RequestForm):
    """A batch of labels (or of an import's IDs): JSON `{"tracking_ids": [...], "size"?}` or the dashboard's
    selection form (repeated `tracking_ids` fields) or an import's result page (one field of IDs separated by
    spaces or commas). Which IDs exist is the labels service's call."""
    tracking_ids = TextListField()
    size = StringField(filters=[strip])

    def tracking_id_list(self) -> list[str]:
        return tracking_ids_in(self.tracking_ids.data)


def tracking_ids_in(values: list[str]) -> list[str]:
    """Each value that reads as one tracking ID (spaces and hyphens in it allowed), else the IDs in it separated by
    spaces, commas or line breaks."""
    return [part for value in values
            for part in ([value] if normalise_tracking_id(value) else value.replace(",", " ").split())]


class ImportForm(AppForm):
    """The CSV upload (its CSRF token is checked for every POST by app.auth.guard)."""

    class Meta:
        csrf = False

    file = FileField(_l("CSV file of bookings"))


ACTION_CHOICES = [SelectChoice("", _l("All actions")),
                  *(SelectChoice(action, action_label(action)) for action in sorted(ACTIONS))]
class AuditFilterForm(AppForm):
    """The audit trail's filters and page, read from the query string (GET, no CSRF): all optional.

    `target` is a tracking ID (any case, spaces around), `type:id` (e.g. `notification:42`), or any other
    target id; `since` and `until` are whole days (YYYY-MM-DD) in DISPLAY_TIMEZONE, both included.
    """

    class Meta:
        csrf = False

    actor = StringField(_l("Who"), filters=[strip], validators=[Optional(), Length(max=ACTOR_MAX)])
    action = SelectField(_l("Action"), choices=ACTION_CHOICES, default="", validators=[Optional()])
    target = StringField(_l("Target"), filters=[strip],
                         validators=[Optional(), Length(max=TARGET_TYPE_MAX + 1 + TARGET_ID_MAX)])
    since = DateField(_l("From date"), validators=[Optional(), plausible_date])
    until = DateField(_l("To date"), validators=[Optional(), plausible_date])
    page = IntegerField(_l("Page"), default=1, validators=[
        Optional(), NumberRange(min=1, max=AUDIT_MAX_PAGE, message=_l("Must be from %(min)s to %(max)s."))])

    def validate_until(self, field) -> None:
        if field.data and self.since.data and field.data < self.since.data:
            raise FieldError(gettext("Must be on or after the from date."))

    def to_filter(self, tz_name: str) -> AuditFilter:
        target_type, target_id = self._target()
        return AuditFilter(
            actor=self.actor.data or None, action=self.action.data or None,
            target_type=target_type, target_id=target_id,
            since=local_day_start(self.since.data, tz_name) if self.since.data else None,
            until=local_day_start(self.until.data + timedelta(days=1), tz_name) if self.until.data else None,
        )

    def _target(self) -> tuple[str | None, str | None]:
        raw = self.target.data or ""
        if not raw:
            return None, None
        tracking_id = normalise_tracking_id(raw)
        if tracking_id is not None:
            return "shipment", tracking_id
        kind, colon, ident = raw.partition(":")
        if colon and kind.strip() and ident.strip():
            kind = kind.strip().lower()
            ident = ident.strip()
            if kind == "shipment":
                ident = normalise_tracking_id(ident) or ident
            return kind, ident
        return None, raw

    def has_filters(self) -> bool:
        return any((self.actor.data, self.action.data, self.target.data, self.since.data, self.until.data))


ROLE_CHOICES = [SelectChoice(role, role.capitalize()) for role in ROLES]


class ClockTimeField(TimeField):
    """A local time of day: "HH:MM" (24-hour), from the form or a JSON string."""

    def __init__(self, label=None, validators=None, **kwargs) -> None:
        super().__init__(label, validators, format="%H:%M", **kwargs)

    def process_formdata(self, valuelist: list[str]) -> None:
        if not valuelist or not valuelist[0].strip():
            self.data = None
            return
        try:
            super().process_formdata([valuelist[0].strip()])
        except ValueError:
            raise ValueError(gettext("A time as HH:MM (24-hour), such as 09:00.")) from None


VEHICLE_NAMES = {Vehicle.TWO_WHEELER: _l("Two-wheeler"), Vehicle.THREE_WHEELER: _l("Three-wheeler"),
                 Vehicle.VAN: _l("Van")}
VEHICLE_CHOICES = [SelectChoice("", _l("Not a courier")),
                   *(SelectChoice(vehicle.value, name) for vehicle, name in VEHICLE_NAMES.items())]


class CourierDetailsForm(RequestForm):
    """A courier's details (JSON or the staff pages' forms), all optional here: which are needed, and which values
    are acceptable, is app.services.field.couriers' call. Blank form fields are not sent; a blank `name` clears the
    shown name when it is sent."""
    name = StringField(_l("Shown name"), filters=[strip], validators=[Optional()])
    vehicle = SelectField(_l("Vehicle"), choices=VEHICLE_CHOICES, default="", validate_choice=False,
                          filters=[strip])
    capacity = IntegerField(_l("Capacity (parcels a day)"), validators=[Optional()])
    shift_start = ClockTimeField(_l("Shift starts"))
    shift_end = ClockTimeField(_l("Shift ends"))

    def courier_fields(self) -> CourierFields:
        return CourierFields(name=self.name.data, vehicle=self.vehicle.data or None, capacity=self.capacity.data,
                             shift_start=self.shift_start.data, shift_end=self.shift_end.data)


class NewUserForm(CourierDetailsForm):
    """/admin/users: a new staff account (browser form or JSON {"username", "password", "role"}, and for a courier
    "vehicle", "capacity"?, "shift_start"?, "shift_end"?, "name"?)."""
    username = StringField(_l("Username"), filters=[strip], validators=[
        InputRequired(_l("Enter a username.")), Length(max=USERNAME_MAX, message=USERNAME_RULE)])
    role = SelectField(_l("Role"), choices=ROLE_CHOICES, default=Role.OPERATOR.value,
                       validate_choice=False, validators=[InputRequired(_l("Choose a role."))])
    password = PasswordField(_l("Initial password"), validators=[
        InputRequired(_l("Enter an initial password.")), Length(max=PASSWORD_MAX)])


class UserChangesForm(CourierDetailsForm):
    """Changes to one account: any of role, active, password and a courier's details as JSON, or one of its page's
    forms (the role, the courier's details, the deactivate/reactivate button, a new password). Which role, password
    and details are acceptable is the service's call."""
    role = SelectField(_l("Role"), choices=ROLE_CHOICES, validate_choice=False)
    active = TrueFalseField()
    password = PasswordField(_l("New password"), validators=[Length(max=PASSWORD_MAX)])

    def validate_password(self, field) -> None:
        if field.raw_data and not field.data:  # sent, but empty
            raise FieldError(gettext("Enter a new password."))

    def to_changes(self) -> UserChanges:
        """The changes asked for; ValidationError when there are none."""
        changes = UserChanges(role=self.role.data, active=self.active.data, password=self.password.data,
                              courier=self.courier_fields())
        if changes == UserChanges():
            raise ValidationError("Send at least one of role, active, password, or a courier's name, vehicle, "
                                  "capacity, shift_start, shift_end.")
        return changes


class WebhookForm(RequestForm):
    """A new webhook subscription, from the admin page's form or JSON {"url", "events", "description"?}; what is
    acceptable (https, a public host, known events) is the webhooks service's call."""
    url = StringField()
    events = TextListField()
    description = StringField()


class HoursField(FloatField):
    """A number of hours: the form's text, or a JSON number."""

    def process_formdata(self, valuelist: list[str]) -> None:
        try:
            super().process_formdata(valuelist)
        except ValueError:
            raise ValueError("A number of hours.") from None


class RotateSecretForm(RequestForm):
    """Rotating a webhook's signing secret: how long the old one keeps signing (optional)."""
    overlap_hours = HoursField(validators=[Optional()])


class StaffUpdateForm(StatusUpdateForm):
    """A shipment page's update form: the status change with its proof of delivery, as multipart/form-data (the
    CSRF token is checked for every POST by app.auth.guard). `signature` is the drawn signature as a PNG data
    URL (filled by static/js/signature.js; the status change decodes and checks it), `photo` an uploaded JPEG or
    PNG."""

    signature = HiddenField()
    photo = FileField(_l("Photo of the delivery (optional)"))

    def photo_bytes(self) -> bytes | None:
        """The uploaded photo's bytes (at most one more than the limit, so an oversized one is told apart)."""
        upload = self.photo.data
        if upload is None or not getattr(upload, "filename", None):
            return None
        return upload.read(MAX_UPLOAD_BYTES + 1)


class ShipmentEditForm(ParcelFields):
    """Corrections to a booking (app.services.shipments.corrections checks every value): JSON with only the fields
    to change (null or "" clears one), or the shipment page's form, prefilled with the current values, where a
    field that is sent empty is cleared and a field the page no longer offers (fixed by now) is left as it is."""
    receiver_name = StringField(_l("Receiver's name"), filters=[strip])
    mobile = StringField(_l("Receiver's mobile"), filters=[strip])
    email = StringField(_l("Receiver's email (optional)"), filters=[strip])
    destination = StringField(_l("Destination address"), filters=[strip])
    destination_lat = NumberText(_l("Latitude"))
    destination_lon = NumberText(_l("Longitude"))

    def changes(self) -> dict[str, object]:
        """The fields this request sent, as sent: a JSON body's names, or the form fields present in the post."""
        sent = (self.json_fields if self.json_fields is not None
                else {name for name in EDITABLE_FIELDS if self[name].raw_data})
        return {name: self[name].data for name in EDITABLE_FIELDS if name in sent}
