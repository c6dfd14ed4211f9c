"""Bookings from a CSV file at /admin/imports (HTML and JSON): every row checked, then all booked or none."""
from __future__ import annotations

import csv
import io

from flask import Response, render_template, request
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from app.admin import bp
from app.admin.forms import ImportForm, LabelBatchForm
from app.auth.guard import accepts_upload, staff_required
from app.domain.roles import Permission
from app.domain.timeutil import utcnow
from app.errors import wants_html
from app.extensions import db
from app.services.shipments.exports import neutralise_formula
from app.services.shipments.imports import MAX_BYTES, ImportRejected, import_bookings, read_bookings_csv
from app.services.shipments.labels import MAX_LABELS, shipments_for_labels
from app.shipments.forms import BookingForm
from app.web.forms import field_errors, read_form

_MULTIPART_OVERHEAD = 64 * 1024


@bp.get("/imports")
@staff_required(Permission.CHANGE_SHIPMENTS)
def imports():
    return render_template("admin/imports.html", form=ImportForm())


@bp.post("/imports")
@staff_required(Permission.CHANGE_SHIPMENTS)
@accepts_upload(MAX_BYTES + _MULTIPART_OVERHEAD)
def import_file():
    """Multipart field `file`: 201 `{"created", "tracking_ids"}`, or 400 `{"error", "rows": [{"line", "fields"}]}`."""
    if request.mimetype != "multipart/form-data":  # a JSON or form body cannot carry the file
        raise ImportRejected("Send the CSV file as multipart/form-data, in the field `file`.",
                             fields={"file": "Choose a CSV file."})
    form = ImportForm()
    try:
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise ImportRejected("Choose a CSV file to import.", fields={"file": "Choose a CSV file."})
        rows = read_bookings_csv(upload.read(MAX_BYTES + 1))
        tracking_ids = import_bookings(_validated_bookings(rows), actor=current_user.username,
                                       lines=[row.line for row in rows])
    except ImportRejected as rejected:
        db.session.rollback()
        if not wants_html():
            raise
        return render_template("admin/imports.html", form=form, rejected=rejected), 400
    db.session.commit()
    if not wants_html():
        return {"created": len(tracking_ids), "tracking_ids": tracking_ids}, 201
    chunks = [tracking_ids[i:i + MAX_LABELS] for i in range(0, len(tracking_ids), MAX_LABELS)]
    return render_template("admin/import_done.html", tracking_ids=tracking_ids, label_chunks=chunks), 201


@bp.post("/imports/tracking-ids.csv")
@staff_required(Permission.VIEW_SHIPMENTS)
def imported_tracking_ids():
    """The tracking IDs of an import (posted back from its result page) as CSV, with receiver and destination;
    cells a spreadsheet would read as formulas are neutralised as in the shipments export."""
    shipments = shipments_for_labels(read_form(LabelBatchForm).tracking_id_list())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(("tracking_id", "receiver_name", "destination", "status"))
    writer.writerows([neutralise_formula(cell) for cell in (s.tracking_id, s.receiver_name, s.destination, s.status)]
                     for s in shipments)
    response = Response(buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="tracking-ids-{utcnow():%Y%m%d-%H%M%S}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _validated_bookings(rows):
    """Each row checked with the booking form's own rules; ImportRejected listing every bad row."""
    bookings, problems = [], []
    # One form, refilled per row: binding a form's fields cost more than checking them. process() resets every
    # field's data and errors, and to_new_shipment() reads only what this row's successful validate() set.
    form = BookingForm(formdata=None)
    for row in rows:
        form.process(MultiDict(row.values))
        if form.validate():
            bookings.append(form.to_new_shipment())
        else:
            problems.append({"line": row.line, "fields": field_errors(form)})
    if problems:
        raise ImportRejected(f"{len(problems)} of {len(rows)} rows are not valid: nothing was imported.",
                             rows=problems)
    return bookings
