"""The outbox filter (query string) and the retry button's form."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional

from app.models.notification import STATES
from app.services.outbox import OUTBOX_MAX_PAGE

STATE_CHOICES = [SelectChoice("", _l("All states"))] + [SelectChoice(state, state.capitalize()) for state in STATES]


class OutboxFilterForm(FlaskForm):
    """Read from the query string: ?state=dead&page=2. Both optional."""

    class Meta:
        csrf = False  # a GET that changes nothing

    state = SelectField(_l("State"), choices=STATE_CHOICES, default="")
    page = IntegerField(_l("Page"), default=1, validators=[
        Optional(), NumberRange(min=1, max=OUTBOX_MAX_PAGE, message=_l("Must be from %(min)s to %(max)s."))])

    def field_errors(self) -> dict[str, str]:
        return {name: messages[0] for name, messages in self.errors.items() if messages}


class RetryForm(FlaskForm):
    """The retry button. CSRF is checked for every POST by app.auth.guard; the state keeps the list's filter."""

    class Meta:
        csrf = False

    state = HiddenField()
