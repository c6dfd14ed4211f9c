"""The outbox filter (query string), the retry button's form, the recipient's choices and the admin's defaults."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import HiddenField, IntegerField, RadioField, SelectField, SelectMultipleField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import AnyOf, InputRequired, NumberRange, Optional

from app.domain.status import ALL_STATUSES
from app.models.notification import STATES
from app.models.notification_choice import CHANNELS, CHOICES
from app.services.outbox.preferences import CHANNEL_LABELS, CHOICE_LABELS
from app.services.outbox.queueing import OUTBOX_MAX_PAGE
from app.web.forms import AppForm, RequestForm, RequiredInJson

STATE_CHOICES = [SelectChoice("", _l("All states"))] + [SelectChoice(state, state.capitalize()) for state in STATES]


class OutboxFilterForm(AppForm):
    """Read from the query string: ?state=dead&page=2. Both optional."""

    class Meta:
        csrf = False  # a GET that changes nothing

    state = SelectField(_l("State"), choices=STATE_CHOICES, default="")
    page = IntegerField(_l("Page"), default=1, validators=[
        Optional(), NumberRange(min=1, max=OUTBOX_MAX_PAGE, message=_l("Must be from %(min)s to %(max)s."))])


class RetryForm(AppForm):
    """The retry button. CSRF is checked for every POST by app.auth.guard; the state keeps the list's filter."""

    class Meta:
        csrf = False

    state = HiddenField()


class ChoicesForm(RequestForm):
    """The recipient's choices page: one of all / delivery_day / none. Its CSRF token is checked by
    app.auth.guard like every form's (only the RFC 8058 one-click POST goes without)."""

    choice = RadioField(_l("Which updates do you want?"), choices=[SelectChoice(c, CHOICE_LABELS[c]) for c in CHOICES],
                        validators=[InputRequired(message=_l("Choose one."))])


class DefaultsForm(RequestForm):
    """The admin's default statuses for one channel: the page's form (a status left unchecked is not sent), or
    JSON {"channel", "statuses": [...]} (the list always sent, empty for none)."""

    channel = SelectField(_l("Channel"), choices=[SelectChoice(c, CHANNEL_LABELS[c]) for c in CHANNELS],
                          validate_choice=False, validators=[
                              InputRequired(message=_l("Choose a channel.")),
                              AnyOf(CHANNELS, message=f"Must be one of: {', '.join(CHANNELS)}.")])
    statuses = SelectMultipleField(_l("Statuses that notify"), choices=[SelectChoice(s, s) for s in ALL_STATUSES],
                                   validate_choice=True, validators=[RequiredInJson()])

