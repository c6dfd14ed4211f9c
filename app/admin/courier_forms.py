"""Reading the couriers pages' query strings: which day's trail (GET /admin/couriers/<username>/trail?date=)."""
from __future__ import annotations

from datetime import date, datetime

from flask_babel import lazy_gettext as _l
from wtforms import DateField
from wtforms.validators import Optional

from app.admin.forms import plausible_date
from app.domain.timeutil import to_local
from app.web.forms import RequestForm


class TrailDayForm(RequestForm):
    """`?date=YYYY-MM-DD`, a local day (DISPLAY_TIMEZONE); today when left out."""

    date = DateField(_l("Day"), validators=[Optional(), plausible_date])

    def day(self, now: datetime, timezone: str) -> date:
        return self.date.data or to_local(now, timezone).date()
