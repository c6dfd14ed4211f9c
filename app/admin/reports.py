"""The operations report (VIEW_OPERATIONS): the rules are app.services.operations.reports's.

- GET /admin/reports?from=YYYY-MM-DD&to=YYYY-MM-DD (local days in DISPLAY_TIMEZONE, both included, at most 92;
  default the last 7 days, today included) → {"from", "to", "timezone", "days": [...], "couriers": [...],
  "hub_dwell": {...}}; browsers get the page: a chart of each daily series, drawn on the server as SVG, beside
  the table it was drawn from, the couriers' table and the hub dwell.
- GET /admin/reports.csv?table=days|couriers|hub_dwell&from=&to= → that table as CSV.
- A date that is not one, `to` before `from`, more than 92 days, or an unknown table: 400 with `fields`.
"""
from __future__ import annotations

from datetime import date
from decimal import Decimal

from flask import Response, current_app, jsonify, render_template, request
from flask_babel import format_date, gettext
from flask_babel import lazy_gettext as _l
from wtforms import DateField, StringField
from wtforms.validators import Optional

from app.admin import bp
from app.admin.forms import plausible_date
from app.auth.guard import staff_required
from app.domain.roles import Permission
from app.errors import ValidationError, wants_html
from app.i18n.locales import format_rupees
from app.services.operations.reports import TABLES, Report, ReportRange, operations_report, report_csv, report_range
from app.web.charts import Chart, Series, bar_chart, line_chart
from app.web.forms import AppForm


class ReportForm(AppForm):
    """?from=&to= (and ?table= for the CSV), read from the query string (GET, no CSRF)."""

    class Meta:
        csrf = False

    first = DateField(_l("From"), name="from", validators=[Optional(), plausible_date])
    last = DateField(_l("To"), name="to", validators=[Optional(), plausible_date])
    table = StringField(_l("Table"))  # the CSV's: one of TABLES

    def report_range(self) -> ReportRange:
        """The days asked for; ValidationError (400) naming each bad field (by its name in the query string)."""
        valid = self.validate()
        problems = {f.name: f.errors[0] for f in self if f.errors}
        if not valid or problems:
            raise ValidationError(gettext("The report's days are not valid: use YYYY-MM-DD."), fields=problems)
        try:
            days = report_range(self.first.data, self.last.data, current_app.config["DISPLAY_TIMEZONE"])
        except ValidationError as error:
            for name, message in error.fields.items():
                self[_ATTRIBUTES[name]].errors = [message]
            raise
        self.first.data, self.last.data = days.first, days.last  # the page's boxes show the days shown
        return days


_ATTRIBUTES = {"from": "first", "to": "last", "table": "table"}


@bp.get("/reports")
@staff_required(Permission.VIEW_OPERATIONS)
def reports():
    form = ReportForm(formdata=request.args)
    try:
        days = form.report_range()
    except ValidationError as error:
        if not wants_html():
            raise
        return render_template("admin/reports.html", form=form, report=None, problem=error.message), 400
    report = operations_report(days)
    if not wants_html():
        return jsonify(report.as_dict())
    return render_template("admin/reports.html", form=form, report=report, charts=charts(report), problem=None)


@bp.get("/reports.csv")
@staff_required(Permission.VIEW_OPERATIONS)
def reports_as_csv():
    form = ReportForm(formdata=request.args)
    days = form.report_range()
    table = form.table.data
    if table not in TABLES:
        raise ValidationError(gettext("Which table? Ask for one of: %(tables)s.", tables=", ".join(TABLES)),
                              fields={"table": gettext("Must be one of: %(tables)s.", tables=", ".join(TABLES))})
    response = Response(report_csv(operations_report(days), table), mimetype="text/csv")
    response.headers["Content-Disposition"] = (f'attachment; filename="report-{table}-{days.first.isoformat()}-'
                                               f'{days.last.isoformat()}.csv"')
    response.headers["Cache-Control"] = "no-store"
    return response


def charts(report: Report) -> dict[str, Chart]:
    """The page's charts of the daily series, by the id the page gives each."""
    labels = [_day_label(day.date) for day in report.days]

    def counts(value: float) -> str:
        return f"{value:g}"

    def percent(value: float) -> str:
        return f"{value * 100:.0f}%"

    return {
        "parcels": bar_chart(labels, [Series(gettext("Booked"), "booked", [d.booked for d in report.days]),
                                      Series(gettext("Delivered"), "delivered", [d.delivered for d in report.days])],
                             counts),
        "rates": line_chart(labels, [Series(gettext("On time"), "on-time", [d.on_time_rate for d in report.days]),
                                     Series(gettext("First attempt"), "first-attempt",
                                            [d.first_attempt_rate for d in report.days])], percent, top=1),
        "exceptions": bar_chart(labels, [Series(gettext("Failed attempts"), "attempts",
                                                [d.attempts for d in report.days]),
                                         Series(gettext("Returns to origin"), "rto", [d.rto for d in report.days])],
                                counts),
        # Geometry only: the amounts themselves stay Decimal in the table and the JSON.
        "cod": bar_chart(labels, [Series(gettext("COD collected"), "cod",
                                         [float(d.cod_collected) for d in report.days])],
                         lambda value: format_rupees(Decimal(str(value)))),
    }


def _day_label(day: date) -> str:
    return format_date(day, "d MMM")
