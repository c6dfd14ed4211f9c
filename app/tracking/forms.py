from wtforms import StringField
from wtforms.validators import InputRequired, Length

from app.forms import RequestForm, strip
from app.services.contacts import MOBILE_INPUT_MAX


class TrackForm(RequestForm):
    tracking_id = StringField("Tracking ID", filters=[strip],
                              validators=[InputRequired("Enter a tracking ID."), Length(max=32)])


class FullDetailsForm(RequestForm):
    """The tracking page's "show full details" check. Whether the digits are right is the service's call."""

    mobile_last4 = StringField("Last 4 digits of the receiver's mobile", filters=[strip],
                               validators=[InputRequired("Enter the last 4 digits of the receiver's mobile number.")])


class MobileSearchForm(RequestForm):
    mobile = StringField("Mobile number", filters=[strip],
                         validators=[InputRequired("Enter a mobile number."), Length(max=MOBILE_INPUT_MAX)])
