"""The PIN codes the network serves, at /admin/serviceability (HTML and JSON): every staff role may read the
list and look a PIN code up; admins replace the list from a CSV file (MANAGE_SETTINGS: an app-wide setting).

GET /admin/serviceability → `{"served", "cod", "express", "everything_served", "directory"}`; with
`?pincode=` → that PIN code's `{"pincode", "served", "cod", "express", "city", "state"}` (400 when it is not a
PIN code). POST with the multipart field `file` → `{"served", "cod", "express"}`, or 400 `{"error", "fields",
"rows": [{"line", "fields"}]}` with nothing changed. GET /admin/serviceability.csv: the list, to edit and upload.
"""
from __future__ import annotations

import csv
import io

from flask import Response, flash, jsonify, redirect, render_template, request, url_for
from flask_babel import gettext
from flask_login import current_user

from app.admin import bp
from app.admin.serviceability_forms import PincodeLookupForm, ServiceabilityUploadForm
from app.auth.guard import accepts_upload, staff_required
from app.domain.roles import Permission
from app.domain.timeutil import utcnow
from app.errors import ValidationError, wants_html
from app.extensions import db
from app.services.shipments.pincodes import directory_size, directory_version
from app.services.shipments.serviceability import (
    COLUMNS,
    MAX_BYTES,
    ServiceabilityRejected,
    check,
    read_serviceability_csv,
    replace_all,
    served_pincodes,
    serviceability_counts,
)

_MULTIPART_OVERHEAD = 64 * 1024


@bp.get("/serviceability")
@staff_required(Permission.VIEW_SHIPMENTS)
def serviceability():
    if not wants_html():
        if "pincode" in request.args:
            return jsonify(check(request.args["pincode"]).to_dict())
        counts = serviceability_counts()
        return jsonify({**counts.to_dict(), "everything_served": counts.everything_served,
                        "directory": {"version": directory_version(), "pincodes": directory_size()}})
    lookup = PincodeLookupForm(formdata=request.args)
    result, status = None, 200
    if lookup.validate() and lookup.pincode.data:
        try:
            result = check(lookup.pincode.data)
        except ValidationError as error:
            lookup.pincode.errors, status = [error.message], 400
    elif lookup.errors:
        status = 400
    return _page(lookup=lookup, result=result), status


@bp.post("/serviceability")
@staff_required(Permission.MANAGE_SETTINGS)
@accepts_upload(MAX_BYTES + _MULTIPART_OVERHEAD)
def replace_serviceability():
    """Multipart field `file`: the whole list, replaced at once or not at all."""
    try:
        if request.mimetype != "multipart/form-data":  # a JSON or form body cannot carry the file
            raise ServiceabilityRejected("Send the CSV file as multipart/form-data, in the field `file`.",
                                         fields={"file": gettext("Choose a CSV file.")})
        upload = request.files.get("file")
        if upload is None or not upload.filename:
            raise ServiceabilityRejected(gettext("Choose a CSV file of PIN codes."),
                                         fields={"file": gettext("Choose a CSV file.")})
        counts = replace_all(read_serviceability_csv(upload.read(MAX_BYTES + 1)), actor=current_user.username)
    except ServiceabilityRejected as rejected:
        db.session.rollback()
        if not wants_html():
            raise
        return _page(rejected=rejected), 400
    db.session.commit()
    if not wants_html():
        return jsonify(counts.to_dict())
    if counts.everything_served:
        flash(gettext("The list is now empty: every PIN code in the directory is served."), "success")
    else:
        flash(gettext("Replaced the list: %(served)s PIN codes served, %(cod)s with cash on delivery, %(express)s "
                      "with express.", served=counts.served, cod=counts.cod, express=counts.express), "success")
    return redirect(url_for("admin.serviceability"))


@bp.get("/serviceability.csv")
@staff_required(Permission.VIEW_SHIPMENTS)
def serviceability_csv():
    """The list as the upload expects it, so an admin edits it and uploads it again (the header row alone when
    the list is empty: everything served)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows((row.pincode, _yes_no(row.cod), _yes_no(row.express)) for row in served_pincodes())
    response = Response(buffer.getvalue(), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="pincodes-served-{utcnow():%Y%m%d}.csv"'
    response.headers["Cache-Control"] = "no-store"
    return response


def _page(lookup: PincodeLookupForm | None = None, result=None, rejected: ServiceabilityRejected | None = None):
    return render_template(
        "admin/serviceability.html", counts=serviceability_counts(), directory_version=directory_version(),
        directory_size=directory_size(), lookup=lookup or PincodeLookupForm(formdata=None), result=result,
        upload_form=ServiceabilityUploadForm(), rejected=rejected, max_mb=MAX_BYTES // (1024 * 1024))


def _yes_no(value: bool) -> str:
    return "yes" if value else "no"
