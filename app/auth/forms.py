from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import InputRequired, Length

from app.forms import RequestForm, strip
from app.models.user import USERNAME_MAX


class LoginForm(RequestForm):
    username = StringField("Username", filters=[strip],
                           validators=[InputRequired("Enter your username."), Length(max=USERNAME_MAX)])
    password = PasswordField("Password", validators=[InputRequired("Enter your password."), Length(max=256)])
    remember = BooleanField("Keep me signed in for 7 days")
