"""Hub tools on the admin blueprint: printable labels (one or many) and the CSV export of shipments."""
from __future__ import annotations

from flask import Response, current_app, request, stream_with_context
from flask_login import current_user

from app.admin import bp
from app.admin.forms import LabelBatchForm, ShipmentFilterForm
from app.auth.guard import staff_required
from app.domain.roles import Permission
from app.domain.timeutil import utcnow
from app.errors import ValidationError
from app.extensions import db
from app.services.shipments.exports import export_csv
from app.services.shipments.labels import LabelOptions, label_size, print_label, print_labels, shipments_for_labels
from app.services.shipments.queries import find_shipment
from app.web.forms import field_errors, read_form


@bp.get("/shipments/<tracking_id>/label.pdf")
@staff_required(Permission.VIEW_SHIPMENTS)
def label(tracking_id: str):
    options = _label_options(request.args.get("size"))
    shipment = find_shipment(tracking_id)
    pdf = print_label(shipment, options, actor=current_user.username)
    db.session.commit()
    return _pdf_response(pdf, f"label-{shipment.tracking_id}.pdf")


@bp.post("/labels.pdf")
@staff_required(Permission.VIEW_SHIPMENTS)
def labels():
    """Labels for a selection: JSON `{"tracking_ids": [...], "size"?}` or the dashboard's selection form."""
    form = read_form(LabelBatchForm)
    options = _label_options(form.size.data or None)
    shipments = shipments_for_labels(form.tracking_id_list())
    pdf = print_labels(shipments, options, actor=current_user.username)
    db.session.commit()
    return _pdf_response(pdf, f"labels-{utcnow():%Y%m%d-%H%M%S}.pdf")


@bp.get("/shipments.csv")
@staff_required(Permission.VIEW_SHIPMENTS)
def export_shipments():
    """The dashboard's current selection (search, status, booking dates) as CSV, streamed."""
    form = ShipmentFilterForm(formdata=request.args)
    if not form.validate():
        raise ValidationError("The export options are not valid.", fields=field_errors(form))
    rows = export_csv(form.to_filter(current_app.config["DISPLAY_TIMEZONE"]),
                      current_app.config["DEFAULT_PHONE_REGION"], actor=current_user.username)
    db.session.commit()  # the export's audit row, before the first row is streamed
    response = Response(stream_with_context(rows), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="shipments-{utcnow():%Y%m%d-%H%M%S}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _label_options(size: str | None) -> LabelOptions:
    return LabelOptions(size=label_size(size), public_base_url=current_app.config["PUBLIC_BASE_URL"],
                        timezone=current_app.config["DISPLAY_TIMEZONE"])


def _pdf_response(pdf: bytes, filename: str) -> Response:
    response = Response(pdf, mimetype="application/pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{filename}"'
    response.headers["Cache-Control"] = "no-store"  # names and addresses: not for shared caches
    return response
