from flask_babel import lazy_gettext as _l
from wtforms import BooleanField, PasswordField, StringField
from wtforms.validators import EqualTo, InputRequired, Length, Optional

from app.models.user import USERNAME_MAX
from app.services.staff.passwords import PASSWORD_MAX
from app.web.forms import RequestForm, strip


class LoginForm(RequestForm):
    username = StringField(_l("Username"), filters=[strip],
                           validators=[InputRequired(_l("Enter your username.")), Length(max=USERNAME_MAX)])
    password = PasswordField(_l("Password"), validators=[InputRequired(_l("Enter your password.")), Length(max=256)])
    remember = BooleanField(_l("Keep me signed in for 7 days"))


class ChangePasswordForm(RequestForm):
    """/account: a new password for the signed-in user. The policy itself is the service's (passwords.py)."""
    current_password = PasswordField(_l("Current password"), validators=[
        InputRequired(_l("Enter your current password.")), Length(max=PASSWORD_MAX)])
    new_password = PasswordField(_l("New password"), validators=[
        InputRequired(_l("Enter a new password.")), Length(max=PASSWORD_MAX)])
    # Browsers type it twice; JSON clients may leave it out.
    confirm_password = PasswordField(_l("New password again"), validators=[
        Optional(), EqualTo("new_password", _l("The two new passwords differ."))])
