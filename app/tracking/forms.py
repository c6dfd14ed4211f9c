from flask_babel import lazy_gettext as _l
from wtforms import StringField
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
