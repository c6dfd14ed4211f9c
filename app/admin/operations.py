"""Operations under /admin: the promise table, the SLA lists and the alerts.

GET /admin/promises → {"days": {service: {zone: days}}, "defaults": {...}, "updated_at", "updated_by"} or the page;
POST the page's form, or JSON {"days": {"express": {"local": 0}}} naming the pairs it sets (MANAGE_SETTINGS).
GET /admin/sla → {"at_risk": [...], "breached": [...]} or the page (VIEW_OPERATIONS).
GET /admin/alerts?state=open|acknowledged|all → {"alerts": [...]} or the page (VIEW_OPERATIONS);
POST /admin/alerts/<id>/acknowledge with `note` (HANDLE_ALERTS): 200 with the alert, 409 when it was already.
"""
from __future__ import annotations

from flask import flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from app.admin import bp
from app.admin.operations_forms import SERVICE_LABELS, ZONE_LABELS, AcknowledgeForm, PromiseForm
from app.auth.guard import staff_required
from app.domain.pricing import SERVICES, ZONES
from app.domain.roles import Permission
from app.domain.timeutil import utcnow
from app.errors import DomainError, ValidationError, wants_html
from app.extensions import db
from app.services.operations.alert_digest import KIND_LABELS
from app.services.operations.alert_handling import STATES, acknowledge_alert, list_alerts
from app.services.operations.promises import promise_table, save_promise_rules
from app.services.operations.sla import sla_lists
from app.web.forms import answers_json, field_label, refused_on_page

ALERTS_QUERY = frozenset({"state", "lang"})


@bp.get("/promises")
@staff_required(Permission.MANAGE_SETTINGS)
def promises_page():
    table = promise_table()
    if not wants_html():
        return jsonify(table.to_dict())
    return _promises_page(PromiseForm.for_days(table.days))


@bp.post("/promises")
@staff_required(Permission.MANAGE_SETTINGS)
def save_promises():
    form = PromiseForm.from_request()
    try:
        form.validate_or_raise()
        table, changed = save_promise_rules(form.sent(), actor=current_user.username)
    except DomainError as error:
        return _promises_page(form, refused_on_page(error, form), status=error.status_code)
    db.session.commit()
    if answers_json():
        return jsonify(table.to_dict())
    flash(gettext("Saved the promised days.") if changed else gettext("Nothing changed."),
          "success" if changed else "info")
    return redirect(url_for("admin.promises_page"))


def _promises_page(form, problem: str | None = None, status: int = 200):
    return render_template("admin/promises.html", form=form, table=promise_table(), problem=problem,
                           services=SERVICES, zones=ZONES, service_labels=SERVICE_LABELS,
                           zone_labels=ZONE_LABELS), status


@bp.get("/sla")
@staff_required(Permission.VIEW_OPERATIONS)
def sla_page():
    now = utcnow()
    lists = sla_lists(now)
    if not wants_html():
        return jsonify(lists.to_dict())
    return render_template("admin/sla.html", lists=lists, now=now)


@bp.get("/alerts")
@staff_required(Permission.VIEW_OPERATIONS)
def alerts_page():
    unknown = {field_label(name): "Unknown parameter." for name in request.args if name not in ALERTS_QUERY}
    if unknown:
        raise ValidationError(fields=unknown)
    state = request.args.get("state", "open")
    alerts = list_alerts(state)
    if not wants_html():
        return jsonify({"alerts": [alert.to_dict() for alert in alerts]})
    return _alerts_page(alerts, state)


def _alerts_page(alerts, state: str, *, failed: int | None = None, form: AcknowledgeForm | None = None,
                 problem: str | None = None, status: int = 200):
    """The alerts in `state`; a refused acknowledgement of alert `failed` shows its form's error beside it."""
    return render_template("admin/alerts.html", alerts=alerts, state=state, states=STATES, kinds=KIND_LABELS,
                           failed=failed, form=form, problem=problem), status


@bp.post("/alerts/<int:alert_id>/acknowledge")
@staff_required(Permission.HANDLE_ALERTS)
def acknowledge(alert_id: int):
    form = AcknowledgeForm.from_request()
    try:
        form.validate_or_raise()
        alert = acknowledge_alert(alert_id, form.note.data, actor=current_user.username)
    except DomainError as error:
        problem = refused_on_page(error, form)
        return _alerts_page(list_alerts("all"), "all", failed=alert_id, form=form, problem=problem,
                            status=error.status_code)
    db.session.commit()
    if answers_json():
        return jsonify(alert.to_dict())
    flash(gettext("Acknowledged alert %(id)s.", id=alert_id), "success")
    return redirect(url_for("admin.alerts_page"))
