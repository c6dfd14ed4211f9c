from __future__ import annotations

from decimal import Decimal
from zoneinfo import ZoneInfo

from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from wtforms import DecimalField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.validators import ValidationError as FieldError
from wtforms.widgets import TextInput

from app.domain.parcels import ADDRESS_MAX, CONTENTS_MAX, PARCEL_FIELDS, Parcel, check_parcel
from app.domain.points import WINDOW_DAYS_AHEAD, Point, Window, check_point, check_window
from app.domain.status import ALL_STATUSES
from app.domain.timeutil import utcnow
from app.errors import Unprocessable, ValidationError
from app.models.shipment import DESTINATION_MAX, EMAIL_MAX, NAME_MAX
from app.models.tracking_event import LOCATION_MAX, NOTE_MAX
from app.services.shipments.booking import NewShipment
from app.services.shipments.contacts import MOBILE_INPUT_MAX, ContactError, normalise_email, normalise_mobile
from app.services.shipments.proofs import ATTEMPT_REASONS
from app.web.forms import ObjectField, RequestForm, TrueFalseField, field_errors, strip


def _length(max_chars: int):
    return Length(max=max_chars, message=_l("At most %(max)d characters."))


class NumberText(DecimalField):
    """A number as sent: a JSON number, or its text from a form or a CSV cell ("1,250.00"), kept raw for the
    parcel rules (app.domain.parcels) to read; a JSON body may send a number or a string here. On a page it is a
    text box (the page asks for inputmode="decimal"): a browser's number box would send nothing for "1,500" or
    "₹ 1500", which the rules read, and the visitor would never learn why."""

    widget = TextInput()

    def process_formdata(self, valuelist) -> None:
        self.data = valuelist[0] if valuelist and valuelist[0] not in ("", None) else None

    def _value(self) -> str:
        return "" if self.data is None else str(self.data)


class YesNoText(TrueFalseField):
    """A yes or no as sent: JSON true or false, a checkbox's "true", a CSV cell's "yes" or "no"; kept raw for the
    parcel rules to read."""

    def process_formdata(self, valuelist) -> None:
        self.data = valuelist[0] if valuelist and valuelist[0] not in ("", None) else None


class ParcelFields(RequestForm):
    """The parcel and payment fields a booking and a correction share, kept as sent for the parcel rules
    (app.domain.parcels) to read."""
    destination_pincode = StringField(_l("Destination PIN code"), filters=[strip])
    weight_kg = NumberText(_l("Weight (kg)"))
    length_cm = NumberText(_l("Length (cm)"))
    width_cm = NumberText(_l("Width (cm)"))
    height_cm = NumberText(_l("Height (cm)"))
    pieces = NumberText(_l("Pieces"))
    declared_value = NumberText(_l("Declared value (₹)"))
    service = SelectField(_l("Service"), choices=[SelectChoice("standard", _l("Standard")),
                                                   SelectChoice("express", _l("Express"))],
                          validate_choice=False, filters=[strip])
    payment = SelectField(_l("Payment"), choices=[SelectChoice("prepaid", _l("Prepaid")),
                                                   SelectChoice("cod", _l("Cash on delivery"))],
                          validate_choice=False, filters=[strip])
    cod_amount = NumberText(_l("Amount to collect (₹)"))


class BookingForm(ParcelFields):
    sender_name = StringField(_l("Sender's name"), filters=[strip],
                              validators=[DataRequired(_l("Enter the sender's name.")), _length(NAME_MAX)])
    receiver_name = StringField(_l("Receiver's name"), filters=[strip],
                                validators=[DataRequired(_l("Enter the receiver's name.")), _length(NAME_MAX)])
    mobile = StringField(_l("Receiver's mobile"), filters=[strip],
                         validators=[DataRequired(_l("Enter a mobile number.")), _length(MOBILE_INPUT_MAX)])
    email = StringField(_l("Receiver's email (optional)"), filters=[strip],
                        validators=[Optional(), _length(EMAIL_MAX)])
    destination = StringField(_l("Destination address"), filters=[strip],
                              validators=[DataRequired(_l("Enter the destination.")), _length(DESTINATION_MAX)])
    # Optional: who sends it and from where, what it is, and how it is paid for (app.domain.parcels).
    sender_mobile = StringField(_l("Sender's mobile"), filters=[strip],
                                validators=[Optional(), _length(MOBILE_INPUT_MAX)])
    sender_email = StringField(_l("Sender's email"), filters=[strip], validators=[Optional(), _length(EMAIL_MAX)])
    sender_address = StringField(_l("Sender's address"), filters=[strip],
                                 validators=[Optional(), _length(ADDRESS_MAX)])
    sender_pincode = StringField(_l("Sender's PIN code"), filters=[strip])
    pickup = YesNoText(_l("Collect from the sender's address"))
    contents = StringField(_l("Contents"), filters=[strip], validators=[Optional(), _length(CONTENTS_MAX)])
    # Optional: where the parcel goes on the map, and when the recipient wants it (app.domain.points). A JSON
    # body sends the window as `delivery_window` {"from", "to"}; a form or a CSV row as two fields, whose times
    # without an offset are the display time zone's.
    destination_lat = NumberText(_l("Latitude"))
    destination_lon = NumberText(_l("Longitude"))
    window_from = StringField(_l("Deliver from"), filters=[strip])
    window_to = StringField(_l("Deliver by"), filters=[strip])
    delivery_window = ObjectField(_l("Delivery window"))

    window_days = WINDOW_DAYS_AHEAD  # for the page's hint
    parcel: Parcel = Parcel()
    point: Point | None = None
    window: Window | None = None
    unprocessable = False
    normalised_email: str | None = None
    normalised_sender_mobile: str | None = None
    normalised_sender_email: str | None = None

    def validate(self, extra_validators=None) -> bool:
        """The fields' own checks, then the parcel rules every way of booking shares, each problem on its field.
        (One form is refilled per row of an import: what the last row set is cleared first.)"""
        self.normalised_email = self.normalised_sender_mobile = self.normalised_sender_email = None
        self.point = self.window = None
        valid = super().validate(extra_validators)
        raw = {name: getattr(self, name).data for name in PARCEL_FIELDS}
        cod_max = Decimal(str(current_app.config["COD_MAX"]))
        self.parcel, problems = check_parcel(raw, cod_max=cod_max, destination=self.destination.data or "")
        for name, problem in problems.said_in(gettext).items():  # in the reader's language
            getattr(self, name).errors = [*getattr(self, name).errors, problem]
        # Every value well formed, but they do not fit together (cash on delivery without an amount): a 422.
        self.unprocessable = valid and problems.only_inconsistent
        placed = self._check_point_and_window()
        return valid and not problems and placed

    def _check_point_and_window(self) -> bool:
        """The destination point and the delivery window (app.domain.points), each problem on its field."""
        self.point, problems = check_point(self.destination_lat.data, self.destination_lon.data)
        for name, problem in problems.said_in(gettext).items():
            getattr(self, name).errors = [*getattr(self, name).errors, problem]
        window_problems = self._check_window()
        return not problems and not window_problems

    def _check_window(self) -> dict[str, str]:
        now = utcnow()
        sent = self.delivery_window.data
        if sent is None:
            local_zone = ZoneInfo(current_app.config["DISPLAY_TIMEZONE"])
            self.window, problems = check_window(self.window_from.data, self.window_to.data, now=now,
                                                 local_zone=local_zone)
            said = problems.said_in(gettext)
            for name, problem in said.items():
                getattr(self, name).errors = [*getattr(self, name).errors, problem]
            return said
        if not isinstance(sent, dict) or set(sent) - {"from", "to"}:
            said = {"delivery_window": gettext('Must be an object {"from", "to"} of two ISO 8601 times.')}
        elif self.window_from.data or self.window_to.data:
            said = {"delivery_window": gettext("Send delivery_window, or window_from and window_to: not both.")}
        else:
            self.window, problems = check_window(sent.get("from"), sent.get("to"), now=now, local_zone=None,
                                                 names=("from", "to"))
            said = problems.said_in(gettext)
            if said:  # one field, each end's problem named
                said = {"delivery_window": " ".join(f"{end}: {problem}" for end, problem in said.items())}
        if said:
            self.delivery_window.errors = [*self.delivery_window.errors, said["delivery_window"]]
        return said

    def validate_or_raise(self) -> None:
        if not self.validate():
            error = Unprocessable if self.unprocessable else ValidationError
            raise error(fields=field_errors(self))

    def validate_mobile(self, field) -> None:
        try:
            self.normalised_mobile = normalise_mobile(field.data, current_app.config["DEFAULT_PHONE_REGION"])
        except ContactError as exc:
            raise FieldError(str(exc)) from exc

    def validate_email(self, field) -> None:
        self.normalised_email = self._email(field)

    def validate_sender_mobile(self, field) -> None:
        self.normalised_sender_mobile = None
        if field.data:
            try:
                self.normalised_sender_mobile = normalise_mobile(field.data,
                                                                 current_app.config["DEFAULT_PHONE_REGION"])
            except ContactError as exc:
                raise FieldError(str(exc)) from exc

    def validate_sender_email(self, field) -> None:
        self.normalised_sender_email = self._email(field)

    @staticmethod
    def _email(field) -> str | None:
        if not field.data:
            return None
        try:
            return normalise_email(field.data)
        except ContactError as exc:
            raise FieldError(str(exc)) from exc

    def to_new_shipment(self, language: str = "en") -> NewShipment:
        return NewShipment(sender_name=self.sender_name.data, receiver_name=self.receiver_name.data,
                           mobile=self.normalised_mobile, email=self.normalised_email,
                           destination=self.destination.data, language=language, parcel=self.parcel,
                           sender_mobile=self.normalised_sender_mobile, sender_email=self.normalised_sender_email,
                           point=self.point, window=self.window)


class StatusUpdateForm(RequestForm):
    # Any known status name passes here; whether it is allowed now is the state machine's call (409).
    status = SelectField(_l("New status"), choices=list(ALL_STATUSES), validate_choice=False,
                         filters=[strip], validators=[DataRequired(_l("Choose a status."))])
    location = StringField(_l("Location"), filters=[strip],
                           validators=[DataRequired(_l("Enter the location.")), _length(LOCATION_MAX)])
    note = TextAreaField(_l("Internal note"), filters=[strip], validators=[Optional(), _length(NOTE_MAX)])
    customer_message = TextAreaField(_l("Message to the customer"), filters=[strip],
                                     validators=[Optional(), _length(NOTE_MAX)])
    # Proof of delivery (app.services.shipments.proofs decides when they are needed and whether they are right).
    received_by = StringField(_l("Received by"), filters=[strip], validators=[Optional(), _length(NAME_MAX)])
    attempt_reason = SelectField(_l("Why could it not be delivered?"), validate_choice=False, filters=[strip],
                                 choices=[SelectChoice("", _l("Choose a reason")),
                                          *(SelectChoice(code, label) for code, label in ATTEMPT_REASONS.items())])
