from wtforms import StringField
from wtforms.validators import InputRequired, Length

from app.forms import RequestForm, strip
from app.services.contacts import MOBILE_INPUT_MAX


class TrackForm(RequestForm):
    tracking_id = StringField("Tracking ID", filters=[strip],
                              validators=[InputRequired("Enter a tracking ID."), Length(max=32)])


class MobileSearchForm(RequestForm):
    mobile = StringField("Mobile number", filters=[strip],
                         validators=[InputRequired("Enter a mobile number."), Length(max=MOBILE_INPUT_MAX)])
