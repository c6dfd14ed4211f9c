"""Reading a hub's scans: the scan page's form and the JSON body of POST /admin/scans, both into a ScanBatch with
the same checks."""
from __future__ import annotations

from flask_babel import lazy_gettext as _l
from wtforms import IntegerField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, NumberRange, Optional
from wtforms.validators import ValidationError as FieldError
from wtforms.widgets import HiddenInput

from app.domain.status import ALL_STATUSES, Status, canonical_status
from app.models.tracking_event import LOCATION_MAX, NOTE_MAX
from app.services.shipments.proofs import ATTEMPT_REASONS
from app.services.shipments.scans import (
    ATTEMPT_REASON_MAX,
    MAX_SCANS,
    RECEIVED_BY_MAX,
    TRACKING_ID_INPUT_MAX,
    ScanBatch,
)
from app.web.forms import RequestForm, TextListField, strip

SCAN_STATUSES = [status for status in ALL_STATUSES if status != Status.BOOKED]  # nothing moves back to Booked
SEPARATOR_IN_ID = "A tracking ID must not be blank or hold a comma or line break."


class ScanBatchForm(RequestForm):
    """POST /admin/scans: `{"status", "location", "note"?, "received_by"?, "attempt_reason"?, "tracking_ids"}`,
    the IDs a JSON array, each one ID as scanned. The page's ScanForm adds its own fields to the same checks."""
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
    tracking_ids = TextListField()  # with no Optional(): the checks below always run

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
        self.validate_each_id()

    def scanned_ids(self) -> list[str]:
        return [i.strip() for i in self.tracking_ids.data]

    def validate_each_id(self) -> None:
        if any(not i.strip() or "," in i or "\n" in i or "\r" in i for i in self.tracking_ids.data):
            raise FieldError(SEPARATOR_IN_ID)

    def to_batch(self) -> ScanBatch:
        return ScanBatch(status=self.status.data, location=self.location.data, tracking_ids=self.scanned_ids(),
                         note=self.note.data or None, received_by=self.received_by.data or None,
                         attempt_reason=self.attempt_reason.data or None)


class ScanForm(ScanBatchForm):
    """/admin/scan: a status and a location picked once, and the IDs scanned under them, either one in the
    scan field (a keyboard-wedge scanner types it and presses Enter) or many in the textarea, one a line."""
    tracking_id = StringField(_l("Scan or type a tracking ID"), filters=[strip], validators=[
        Optional(), Length(max=TRACKING_ID_INPUT_MAX, message=f"At most {TRACKING_ID_INPUT_MAX} characters.")])
    tracking_ids = TextAreaField(_l("Many tracking IDs, one a line"))  # with no Optional(): the checks always run
    # The running count of this page's posts (the page keeps it across posts without JavaScript).
    accepted_so_far = IntegerField(widget=HiddenInput(), default=0, validators=[Optional(), NumberRange(0, 10**9)])
    refused_so_far = IntegerField(widget=HiddenInput(), default=0, validators=[Optional(), NumberRange(0, 10**9)])

    def scanned_ids(self) -> list[str]:
        many = [line.strip() for line in (self.tracking_ids.data or "").replace(",", "\n").splitlines()]
        return [i for i in [self.tracking_id.data or "", *many] if i]

    def validate_each_id(self) -> None:
        """The textarea separates IDs by line breaks or commas: there is nothing more to check."""

    def start_next(self, accepted: int, refused: int) -> None:
        """After a post: the same settings, empty scan fields, and the running count moved on."""
        for counter, more in ((self.accepted_so_far, accepted), (self.refused_so_far, refused)):
            counter.data, counter.raw_data = (counter.data or 0) + more, None
        self.tracking_id.data = self.tracking_ids.data = ""
