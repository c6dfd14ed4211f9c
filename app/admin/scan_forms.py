"""Reading a hub's scans: the scan page's form and the JSON body of POST /admin/scans, both into a ScanBatch."""
from __future__ import annotations

from flask import request
from flask_babel import lazy_gettext as _l
from werkzeug.datastructures import MultiDict
from wtforms import IntegerField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.validators import ValidationError as FieldError
from wtforms.widgets import HiddenInput

from app.domain.status import ALL_STATUSES, Status, canonical_status
from app.errors import ValidationError
from app.models.tracking_event import LOCATION_MAX, NOTE_MAX
from app.services.shipments.proofs import ATTEMPT_REASONS
from app.services.shipments.scans import (
    ATTEMPT_REASON_MAX,
    MAX_SCANS,
    RECEIVED_BY_MAX,
    TRACKING_ID_INPUT_MAX,
    ScanBatch,
)
from app.web.forms import NOT_A_STRING, UNKNOWN_FIELD, RequestForm, field_label, json_object_body, strip

SCAN_STATUSES = [status for status in ALL_STATUSES if status != Status.BOOKED]  # nothing moves back to Booked
SCAN_FIELDS = frozenset({"status", "location", "note", "received_by", "attempt_reason", "tracking_ids"})


class ScanForm(RequestForm):
    """/admin/scan: a status and a location picked once, and the IDs scanned under them, either one in the
    scan field (a keyboard-wedge scanner types it and presses Enter) or many in the textarea, one a line."""
    status = SelectField(_l("Status to record"), choices=[SelectChoice("", _l("Choose a status")),
                                                      *map(SelectChoice, SCAN_STATUSES)],
                         validate_choice=False, filters=[strip], validators=[DataRequired("Choose a status.")])
    location = StringField(_l("Location"), filters=[strip], validators=[
        DataRequired("Enter the location."), Length(max=LOCATION_MAX, message=f"At most {LOCATION_MAX} characters.")])
    note = TextAreaField(_l("Internal note"), filters=[strip], validators=[
        Optional(), Length(max=NOTE_MAX, message=f"At most {NOTE_MAX} characters.")])
    received_by = StringField(_l("Received by"), filters=[strip], validators=[
        Optional(), Length(max=RECEIVED_BY_MAX, message=f"At most {RECEIVED_BY_MAX} characters.")])
    attempt_reason = SelectField(_l("Why delivery failed"), choices=[SelectChoice("", _l("Choose a reason")), *(
        SelectChoice(code, label) for code, label in ATTEMPT_REASONS.items())], validate_choice=False,
        filters=[strip], validators=[
        Optional(), Length(max=ATTEMPT_REASON_MAX, message=f"At most {ATTEMPT_REASON_MAX} characters.")])
    tracking_id = StringField(_l("Scan or type a tracking ID"), filters=[strip], validators=[
        Optional(), Length(max=TRACKING_ID_INPUT_MAX, message=f"At most {TRACKING_ID_INPUT_MAX} characters.")])
    tracking_ids = TextAreaField(_l("Many tracking IDs, one a line"))  # with no Optional(): the checks below always run
    # The running count of this page's posts (the page keeps it across posts without JavaScript).
    accepted_so_far = IntegerField(widget=HiddenInput(), default=0, validators=[Optional(), NumberRange(0, 10**9)])
    refused_so_far = IntegerField(widget=HiddenInput(), default=0, validators=[Optional(), NumberRange(0, 10**9)])

    def validate_status(self, field) -> None:
        if field.data and canonical_status(field.data) not in SCAN_STATUSES:
            raise FieldError("Choose one of the statuses offered.")

    def validate_tracking_ids(self, field) -> None:
        ids = self.scanned_ids()
        if not ids:
            raise FieldError("Scan or type at least one tracking ID.")
        if len(ids) > MAX_SCANS:
            raise FieldError(f"At most {MAX_SCANS} tracking IDs at once.")
        if any(len(i) > TRACKING_ID_INPUT_MAX for i in ids):
            raise FieldError(f"A tracking ID has at most {TRACKING_ID_INPUT_MAX} characters.")

    def scanned_ids(self) -> list[str]:
        many = [line.strip() for line in (self.tracking_ids.data or "").replace(",", "\n").splitlines()]
        return [i for i in [self.tracking_id.data or "", *many] if i]

    def start_next(self, accepted: int, refused: int) -> None:
        """After a post: the same settings, empty scan fields, and the running count moved on."""
        for counter, more in ((self.accepted_so_far, accepted), (self.refused_so_far, refused)):
            counter.data, counter.raw_data = (counter.data or 0) + more, None
        self.tracking_id.data = self.tracking_ids.data = ""

    def to_batch(self) -> ScanBatch:
        return ScanBatch(status=self.status.data, location=self.location.data, tracking_ids=self.scanned_ids(),
                         note=self.note.data or None, received_by=self.received_by.data or None,
                         attempt_reason=self.attempt_reason.data or None)


def scan_batch_from_json() -> ScanBatch:
    """POST /admin/scans: `{"status", "location", "note"?, "received_by"?, "attempt_reason"?, "tracking_ids"}`,
    checked like the page's form; ValidationError (400, `fields`) for anything else."""
    if not request.is_json:
        raise ValidationError("Send a JSON object (Content-Type: application/json).")
    body = json_object_body()
    fields = {field_label(name): UNKNOWN_FIELD for name in body if name not in SCAN_FIELDS}
    ids = body.get("tracking_ids")
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        fields["tracking_ids"] = "Must be a list of tracking IDs (strings)."
        ids = []
    scalars = {}
    for name in SCAN_FIELDS - {"tracking_ids"}:
        value = body.get(name)
        if value is not None and not isinstance(value, str):
            fields[name] = NOT_A_STRING
        elif value is not None:
            scalars[name] = value
    form = ScanForm(formdata=MultiDict({**scalars, "tracking_ids": "\n".join(ids) if ids else ""}))
    if not form.validate():
        fields = {**form.field_errors(), **fields}
    if ids and not fields and len(form.scanned_ids()) != len(ids):
        fields["tracking_ids"] = "A tracking ID must not be blank or hold a comma or line break."
    if fields:
        raise ValidationError(fields=fields)
    return form.to_batch()
