from __future__ import annotations

from flask import current_app
from flask_babel import lazy_gettext as _l
from wtforms import SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional
from wtforms.validators import ValidationError as FieldError

from app.domain.status import ALL_STATUSES
from app.models.shipment import DESTINATION_MAX, EMAIL_MAX, NAME_MAX
from app.models.tracking_event import LOCATION_MAX, NOTE_MAX
from app.services.shipments.booking import NewShipment
from app.services.shipments.contacts import MOBILE_INPUT_MAX, ContactError, normalise_email, normalise_mobile
from app.services.shipments.proofs import ATTEMPT_REASONS
from app.web.forms import RequestForm, strip


def _length(max_chars: int):
    return Length(max=max_chars, message=_l("At most %(max)d characters."))


class BookingForm(RequestForm):
    sender_name = StringField(_l("Sender's name"), filters=[strip],
                              validators=[DataRequired(_l("Enter the sender's name.")), _length(NAME_MAX)])
    receiver_name = StringField(_l("Receiver's name"), filters=[strip],
                                validators=[DataRequired(_l("Enter the receiver's name.")), _length(NAME_MAX)])
    mobile = StringField(_l("Receiver's mobile"), filters=[strip],
                         validators=[DataRequired(_l("Enter a mobile number.")), _length(MOBILE_INPUT_MAX)])
    email = StringField(_l("Recipient's email"), filters=[strip],
                        validators=[DataRequired(_l("Enter the recipient's email.")), _length(EMAIL_MAX)])
    destination = StringField(_l("Destination"), filters=[strip],
                              validators=[DataRequired(_l("Enter the destination.")), _length(DESTINATION_MAX)])

    def validate_mobile(self, field) -> None:
        try:
            self.normalised_mobile = normalise_mobile(field.data, current_app.config["DEFAULT_PHONE_REGION"])
        except ContactError as exc:
            raise FieldError(str(exc)) from exc

    def validate_email(self, field) -> None:
        try:
            self.normalised_email = normalise_email(field.data)
        except ContactError as exc:
            raise FieldError(str(exc)) from exc

    def to_new_shipment(self, language: str = "en") -> NewShipment:
        return NewShipment(sender_name=self.sender_name.data, receiver_name=self.receiver_name.data,
                           mobile=self.normalised_mobile, email=self.normalised_email,
                           destination=self.destination.data, language=language)


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
