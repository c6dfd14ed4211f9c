"""The outbox filter (query string), the retry button's form, the recipient's choices and the admin's defaults."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import HiddenField, IntegerField, RadioField, SelectField, SelectMultipleField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import InputRequired, NumberRange, Optional

from app.domain.status import ALL_STATUSES
from app.errors import ValidationError
from app.models.notification import STATES
from app.models.notification_choice import CHANNELS, CHOICES
from app.services.outbox.preferences import CHANNEL_LABELS, CHOICE_LABELS
from app.services.outbox.queueing import OUTBOX_MAX_PAGE
from app.web.forms import RequestForm

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


class ChoicesForm(RequestForm):
    """The recipient's choices page: one of all / delivery_day / none. Its CSRF token is checked by
    app.auth.guard like every form's (only the RFC 8058 one-click POST goes without)."""

    choice = RadioField(_l("Which updates do you want?"), choices=[SelectChoice(c, CHOICE_LABELS[c]) for c in CHOICES],
                        validators=[InputRequired(message=_l("Choose one."))])


class DefaultsForm(RequestForm):
    """The admin's default statuses for one channel."""

    channel = SelectField(_l("Channel"), choices=[SelectChoice(c, CHANNEL_LABELS[c]) for c in CHANNELS],
                          validators=[InputRequired(message=_l("Choose a channel."))])
    statuses = SelectMultipleField(_l("Statuses that notify"), choices=[SelectChoice(s, s) for s in ALL_STATUSES],
                                   validate_choice=True)


def defaults_from_json(body: dict) -> tuple[str, list[str]]:
    """{"channel": "sms", "statuses": ["Delivered", …]} → (channel, statuses); ValidationError otherwise."""
    fields = {}
    channel, statuses = body.get("channel"), body.get("statuses")
    unknown = sorted(set(body) - {"channel", "statuses"})
    if unknown:
        fields[unknown[0][:40]] = "Unknown field."
    if not isinstance(channel, str) or channel not in CHANNELS:
        fields["channel"] = f"Must be one of: {', '.join(CHANNELS)}."
    if not isinstance(statuses, list) or not all(isinstance(s, str) for s in statuses):
        fields["statuses"] = "Must be a list of statuses."
    if fields:
        raise ValidationError(fields=fields)
    return channel, statuses
