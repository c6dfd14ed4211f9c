from flask_babel import lazy_gettext as _l
from wtforms import RadioField, SelectField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, Length

from app.services.shipments.contacts import MOBILE_INPUT_MAX
from app.web.forms import RequestForm, strip


class TrackForm(RequestForm):
    tracking_id = StringField(_l("Tracking ID"), filters=[strip],
                              validators=[InputRequired(_l("Enter a tracking ID.")),
                                          Length(max=32, message=_l("At most %(max)d characters."))])


class FullDetailsForm(RequestForm):
    """The tracking page's "show full details" check. Whether the digits are right is the service's call."""

    mobile_last4 = StringField(_l("Last 4 digits of the receiver's mobile"), filters=[strip],
                               validators=[InputRequired(_l("Enter the last 4 digits of the receiver's mobile "
                                                            "number."))])


class MobileSearchForm(RequestForm):
    mobile = StringField(_l("Mobile number"), filters=[strip],
                         validators=[InputRequired(_l("Enter a mobile number.")),
                                     Length(max=MOBILE_INPUT_MAX, message=_l("At most %(max)d characters."))])


ANSWER_LABELS = {
    "reattempt": _l("Try again"),
    "pickup_at_hub": _l("I will collect it at the hub"),
    "return": _l("Send it back to the sender"),
}


class NdrAnswerForm(RequestForm):
    """The recipient's answer to a failed delivery (/r/<token>): the page's form, or the same as a JSON object.
    What the answer must hold is the service's call (app.services.ndr.answers); the form only reads it."""

    action = RadioField(_l("What should we do?"), validate_choice=False,
                        choices=[SelectChoice(action, label) for action, label in ANSWER_LABELS.items()])
    date = SelectField(_l("Day of the next attempt"), choices=[], validate_choice=False)
    instructions = TextAreaField(_l("Instructions for the courier"), filters=[strip])
    landmark = StringField(_l("Landmark"), filters=[strip])
    corrected_address = StringField(_l("Corrected address"), filters=[strip])
    alternate_mobile = StringField(_l("Another mobile number to call"), filters=[strip])

    def answer(self) -> dict[str, str]:
        """The answer's fields that were filled in, as the service takes them."""
        return {name: self[name].data for name in ("action", "date", "instructions", "landmark", "corrected_address",
                                                   "alternate_mobile")
                if isinstance(self[name].data, str) and self[name].data.strip()}
