"""Cash on delivery settled: the couriers' cash ledger for a day (JSON, CSV, page), remittances received at the hub,
a courier's end-of-day report. The rules are app.services.field.cash's.

GET /admin/cod?date=YYYY-MM-DD (default today, DISPLAY_TIMEZONE) → {"date", "couriers": [...]}; GET
/admin/cod.csv?date= the same as CSV; POST /admin/couriers/<username>/remittances {"amount", "reference"} → 201
the remittance and the courier's new outstanding (a browser's form goes back to the day's ledger); GET
/admin/couriers/<username>/day?date= → the courier's day. A bad date is a 400.
"""
from __future__ import annotations

from flask import Response, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from wtforms import DateField, StringField
from wtforms.validators import Optional

from app.admin import bp
from app.admin.forms import plausible_date
from app.admin.rates import AmountField
from app.auth.guard import staff_required
from app.domain.field import REMITTANCE_REFERENCE_MAX
from app.domain.roles import Permission
from app.errors import DomainError, ValidationError, wants_html
from app.extensions import db
from app.i18n.locales import format_rupees
from app.services.field.cash import Day, cod_ledger_csv, cod_ledgers, courier_day, local_day, record_remittance
from app.services.shipments.proofs import attempt_reason_label
from app.web.forms import AppForm, RequestForm, answers_json, field_errors, refused_on_page, strip


class DayForm(AppForm):
    """?date=YYYY-MM-DD, read from the query string (GET, no CSRF); none is today."""

    class Meta:
        csrf = False

    date = DateField(_l("Day"), validators=[Optional(), plausible_date])

    def day(self) -> Day:
        """The day asked for; ValidationError (400) when it is not a date."""
        if not self.validate():
            raise ValidationError("The date is not valid: use YYYY-MM-DD.", fields=field_errors(self))
        day = local_day(self.date.data, current_app.config["DISPLAY_TIMEZONE"])
        self.date.data = day.date  # the page's date box shows the day shown
        return day


class RemittanceForm(RequestForm):
    """Cash handed in: JSON {"amount", "reference"} (the amount a number or its text) or a ledger page's form.
    The amount and reference are checked by the cash rules (app.services.field.cash)."""
    amount = AmountField(_l("Amount received (₹)"))
    reference = StringField(_l("Receipt reference"), filters=[strip],
                            render_kw={"maxlength": REMITTANCE_REFERENCE_MAX})


@bp.get("/cod")
@staff_required(Permission.VIEW_FIELD)
def cod_ledger():
    form = DayForm(formdata=request.args)
    try:
        day = form.day()
    except ValidationError:
        if not wants_html():
            raise
        return _ledger_page(form, None, status_code=400)
    ledgers = cod_ledgers(day)
    if not wants_html():
        return jsonify({"date": day.date.isoformat(), "couriers": [ledger.as_dict() for ledger in ledgers]})
    return _ledger_page(form, day, ledgers)


@bp.get("/cod.csv")
@staff_required(Permission.VIEW_FIELD)
def cod_ledger_as_csv():
    day = DayForm(formdata=request.args).day()
    response = Response(cod_ledger_csv(day, cod_ledgers(day)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="cod-{day.date.isoformat()}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/couriers/<username>/remittances")
@staff_required(Permission.MANAGE_FIELD)
def receive_remittance(username: str):
    form = RemittanceForm.from_request()
    try:
        receipt = record_remittance(username, form.amount.data, form.reference.data, actor=current_user.username)
    except DomainError as error:
        problem = refused_on_page(error, form)
        day = local_day(None, current_app.config["DISPLAY_TIMEZONE"])
        return _ledger_page(DayForm(formdata=None), day, cod_ledgers(day), status_code=error.status_code,
                            problem=problem, failed=(username, form))
    db.session.commit()
    if answers_json():
        return jsonify(receipt.as_dict()), 201
    flash(gettext("Received %(amount)s from %(courier)s (%(reference)s). Still with them: %(outstanding)s.",
                  amount=format_rupees(receipt.remittance.amount), courier=receipt.courier,
                  reference=receipt.remittance.reference, outstanding=format_rupees(receipt.outstanding)), "success")
    if receipt.surplus is not None:
        flash(gettext("That is %(surplus)s more cash than %(courier)s had collected: check their collections.",
                      surplus=format_rupees(receipt.surplus), courier=receipt.courier), "warning")
    return redirect(url_for("admin.cod_ledger"))


@bp.get("/couriers/<username>/day")
@staff_required(Permission.VIEW_FIELD)
def courier_day_report(username: str):
    form = DayForm(formdata=request.args)
    report = courier_day(username, form.day())
    if not wants_html():
        return jsonify(report.as_dict())
    return render_template("admin/courier_day.html", report=report, form=form,
                           remittance_form=RemittanceForm(formdata=None), reason_label=attempt_reason_label,
                           is_today=report.day == local_day(None, current_app.config["DISPLAY_TIMEZONE"]).date)


def _ledger_page(form: DayForm, day: Day | None, ledgers=(), *, status_code: int = 200, problem: str | None = None,
                 failed: tuple[str, RemittanceForm] | None = None):
    """The ledger page: the day's table, and a remittance form per courier on today's. `failed` is a refused
    remittance (username, its form with the errors) to show again in its courier's row."""
    today = local_day(None, current_app.config["DISPLAY_TIMEZONE"]).date
    page = render_template("admin/cod.html", form=form, day=day, ledgers=ledgers, problem=problem,
                           is_today=day is not None and day.date == today,
                           remittance_form=RemittanceForm(formdata=None),
                           failed_username=failed[0].strip().lower() if failed else None,
                           failed_form=failed[1] if failed else None,
                           failed_messages=[f"{failed[0]}: {message}" for message in field_errors(failed[1]).values()]
                           if failed else [])
    return page, status_code
