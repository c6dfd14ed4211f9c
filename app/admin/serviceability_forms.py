"""The serviceability page's forms: the PIN code look-up (GET) and the list's upload (multipart)."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf.file import FileField
from wtforms import StringField
from wtforms.validators import Length, Optional

from app.web.forms import AppForm, strip

PINCODE_INPUT_MAX = 20


class PincodeLookupForm(AppForm):
    """One PIN code to look up, read from the query string (GET, no CSRF); the service judges its form."""

    class Meta:
        csrf = False

    pincode = StringField(_l("PIN code"), filters=[strip], validators=[Optional(), Length(max=PINCODE_INPUT_MAX)])


class ServiceabilityUploadForm(AppForm):
    """The list as a CSV file (its CSRF token is checked for every POST by app.auth.guard)."""

    class Meta:
        csrf = False

    file = FileField(_l("CSV file of PIN codes"))
