"""The field settings form: what proof a delivery needs, per kind, and the delivery code. The values are checked
by the service (app.services.field.settings); the form only reads them, from the page or from JSON."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import RadioField
from wtforms.fields.choices import SelectChoice

from app.domain.field import ProofLevel
from app.web.forms import RequestForm

PROOF_LEVEL_LABELS = {
    ProofLevel.OFF: _l("Off: not asked for"),
    ProofLevel.WARN: _l("Warn: asked for, the courier may go on without it"),
    ProofLevel.REQUIRED: _l("Required: no delivery without it"),
}
_LEVELS = [SelectChoice(level.value, label) for level, label in PROOF_LEVEL_LABELS.items()]


class FieldSettingsForm(RequestForm):
    """The page posts every setting; JSON sends only those it changes."""

    received_by = RadioField(_l("Name of the person who received the parcel"), choices=_LEVELS,
                             validate_choice=False)
    signature = RadioField(_l("Signature"), choices=_LEVELS, validate_choice=False)
    photo = RadioField(_l("Photo at the door"), choices=_LEVELS, validate_choice=False)
    delivery_otp = RadioField(_l("Delivery code"), validate_choice=False, choices=[
        SelectChoice("on", _l("On: the recipient gets a 4-digit code at Out for Delivery; Delivered needs it")),
        SelectChoice("off", _l("Off"))])

    def sent(self) -> dict[str, str]:
        """The settings this request sent, by name."""
        return {field.name: field.data for field in self if field.raw_data}
