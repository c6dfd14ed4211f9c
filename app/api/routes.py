"""/api/v1: book, read, list and move shipments with an API key; the OpenAPI document and /api/docs."""
from __future__ import annotations

import re
from dataclasses import replace

from flask import Response, current_app, g, render_template, request, url_for
from flask_login import current_user
from werkzeug.datastructures import MultiDict

from app.api import api, bp
from app.api.contract import JSON, PDF, HeaderParameter, Success, answer
from app.api.openapi import docs_view, document_for
from app.api.schemas import (
    LabelOptions,
    NdrAnswer,
    NdrReport,
    NewEvent,
    NewEvents,
    NewShipment,
    RecordedEvent,
    RecordedEvents,
    Shipment,
    ShipmentFilters,
    ShipmentList,
    ShipmentWithEvents,
)
from app.auth.guard import accepts_upload
from app.domain.links import absolute_url
from app.domain.roles import Permission
from app.domain.status import canonical_status
from app.domain.timeutil import utcnow
from app.errors import ValidationError
from app.extensions import db
from app.services.ndr.answers import answer_report
from app.services.ndr.queries import report_to_dict
from app.services.shipments import labels, status_changes
from app.services.shipments.booking import create_shipment
from app.services.shipments.feed import FeedFilter, shipment_feed
from app.services.shipments.queries import find_shipment, next_statuses, timeline
from app.services.shipments.status_changes import record_status_change
from app.services.staff.idempotency import (
    StoredAnswer,
    claim_or_replay,
    purge_expired_keys,
    remember_answer,
    request_fingerprint,
)
from app.shipments.forms import BookingForm
from app.web.serializers import shipment_to_dict

IDEMPOTENCY_KEY = HeaderParameter(
    "Idempotency-Key", "Any unique string (a UUID): the same key with the same body within 24 hours returns the "
    "first answer and books nothing more; with another body it is a 422, and while the first request with it is "
    "still running a 409 (retry).", 255, r"^[\x21-\x7e]+$", errors=(409, 422))
_IDEMPOTENCY_KEY_TEXT = re.compile(IDEMPOTENCY_KEY.pattern)


# --- shipments ---------------------------------------------------------------------------------------------------

@api.operation("POST", "/shipments", summary="Book a shipment", permission=Permission.CHANGE_SHIPMENTS,
               body=NewShipment, headers=(IDEMPOTENCY_KEY,),
               response=Success(Shipment, 201, "Booked: the shipment, its tracking and label links.",
                                headers={"Location": "This shipment's URL in the API."}))
def book_shipment(body: NewShipment):
    """Books like `POST /create` (same fields and rules) and emails the recipient; `promised_by` may name the
    day you promised. Send an `Idempotency-Key` to retry safely."""
    sent = body.model_dump(mode="json", by_alias=True)
    form = BookingForm(formdata=MultiDict({name: value for name, value in sent.items()
                                           if value is not None and name != "promised_by"}))  # null: not given
    form.validate_or_raise()
    key = _idempotency_key()
    claim = None
    if key is not None:
        claim = claim_or_replay(g.api_key.id, key, request_fingerprint("POST /api/v1/shipments", sent))
        if isinstance(claim, StoredAnswer):
            db.session.rollback()
            return _created(claim.body, replayed=True)
    shipment = create_shipment(replace(form.to_new_shipment(), promised_on=body.promised_by),
                               actor=current_user.username,
                               audit_details={"via": "api", "api_key_id": g.api_key.id})
    body_out = Shipment.model_validate(_shipment(shipment)).model_dump(mode="json")
    if claim is not None:
        remember_answer(claim, 201, body_out)
    db.session.commit()
    return _created(body_out, replayed=False)


@api.operation("GET", "/shipments", summary="List shipments", permission=Permission.VIEW_SHIPMENTS,
               query=ShipmentFilters, response=Success(ShipmentList, 200, "A page of shipments."))
def list_shipments(query: ShipmentFilters):
    """Oldest change first; follow `next` for the following page (at most 100 shipments a page). Poll with
    `updated_since` to pick up changes."""
    page = shipment_feed(FeedFilter(query.status, query.updated_since, query.mobile), query.limit, query.cursor,
                         current_app.config["DEFAULT_PHONE_REGION"])
    next_url = None
    if page.next_cursor is not None:
        arguments = {**query.model_dump(mode="json", exclude_none=True), "cursor": page.next_cursor}
        next_url = _absolute(url_for("api.list_shipments", **arguments))
    return answer(ShipmentList, {"shipments": [_shipment(s) for s in page.shipments], "next": next_url})


@api.operation("GET", "/shipments/<tracking_id>", summary="Get a shipment", permission=Permission.VIEW_SHIPMENTS,
               response=Success(ShipmentWithEvents, 200, "The shipment with its contact details and timeline."))
def get_shipment(tracking_id: str):
    """The staff view: full names, address, mobile, email, and every event with its internal note."""
    shipment = find_shipment(tracking_id)
    return answer(ShipmentWithEvents, _shipment(shipment, timeline(shipment)))


@api.operation("GET", "/shipments/<tracking_id>/label", summary="Print a shipment's label",
               permission=Permission.VIEW_SHIPMENTS, query=LabelOptions,
               response=Success(None, 200, "The label, a PDF page per piece.", media_type=PDF))
def shipment_label(tracking_id: str, query: LabelOptions):
    shipment = find_shipment(tracking_id)
    options = labels.LabelOptions(size=labels.label_size(query.size),
                                  public_base_url=current_app.config["PUBLIC_BASE_URL"],
                                  timezone=current_app.config["DISPLAY_TIMEZONE"])
    pdf = labels.print_label(shipment, options, actor=current_user.username, via="api")
    db.session.commit()
    response = Response(pdf, mimetype=PDF)
    response.headers["Content-Disposition"] = f'inline; filename="label-{shipment.tracking_id}.pdf"'
    response.headers["Cache-Control"] = "no-store"
    return response


@api.operation("POST", "/shipments/<tracking_id>/events", summary="Record a status change",
               permission=Permission.CHANGE_SHIPMENTS, body=NewEvent, errors=(409,),
               response=Success(RecordedEvent, 201, "Recorded: the new event and the statuses allowed next."))
def record_event(tracking_id: str, body: NewEvent):
    """Moves the shipment to `status` (the recipient is emailed). A transition the state machine forbids is a
    409 whose `allowed` member lists the statuses allowed next."""
    shipment, event = record_status_change(tracking_id, body.status, body.location, body.note,
                                           actor=current_user.username, customer_message=body.customer_message,
                                           received_by=body.received_by, attempt_reason=body.attempt_reason,
                                           proof_required=True)
    db.session.commit()
    recorded = shipment_to_dict(shipment, [event], staff=True)
    return answer(RecordedEvent, {"tracking_id": shipment.tracking_id, "status": shipment.status,
                                  "event": recorded["events"][0], "allowed_next_statuses": next_statuses(shipment)},
                  201)


@api.operation("POST", "/shipments/<tracking_id>/ndr", summary="Answer a failed delivery",
               permission=Permission.CHANGE_SHIPMENTS, body=NdrAnswer, errors=(409,),
               response=Success(NdrReport, 200, "Recorded: the non-delivery report with its answer."))
def answer_ndr(tracking_id: str, body: NdrAnswer):
    """Answers the parcel's open non-delivery report as the recipient would on their page: another attempt
    (optionally on a day, with instructions for the courier), collection at the hub, or the return to the
    sender (RTO Initiated at once). The latest answer counts."""
    shipment = find_shipment(tracking_id)
    report = answer_report(shipment, body.model_dump(exclude_none=True), actor=current_user.username,
                           answered_by=f"api:{g.api_key.prefix}", via="api", now=utcnow())
    db.session.commit()
    return answer(NdrReport, report_to_dict(report, shipment.tracking_id, staff=True))


BULK_BODY_MAX = 2 * 1024 * 1024  # 1,000 changes with their notes and messages


@api.operation("POST", "/events", summary="Record many status changes at once",
               permission=Permission.CHANGE_SHIPMENTS, body=NewEvents, errors=(413,),
               response=Success(RecordedEvents, 200, "One result per change, in order: each accepted or refused "
                                                     "on its own."))
@accepts_upload(BULK_BODY_MAX)
def record_events(body: NewEvents):
    """Up to 1,000 changes, each its own unit through the same bulk service as scan mode: one refused change
    does not stop the others, and each accepted one writes its event, messages and audit row exactly as a
    single change does. The same tracking ID twice is one change and one refusal."""
    outcomes = status_changes.apply_status_changes([
        status_changes.StatusChange(change.tracking_id, canonical_status(change.status), change.location, change.note,
                           customer_message=change.customer_message, received_by=change.received_by,
                           attempt_reason=change.attempt_reason, proof_required=True)
        for change in body.changes], current_user.username)
    db.session.commit()
    results = [{"tracking_id": outcome.tracking_id, "ok": outcome.ok, "status": outcome.status,
                **({} if outcome.ok else {"error": outcome.error, "reason": str(outcome.refusal),
                                          "allowed": list(outcome.allowed)})}
               for outcome in outcomes]
    accepted = sum(outcome.ok for outcome in outcomes)
    return answer(RecordedEvents, {"results": results, "accepted": accepted, "refused": len(outcomes) - accepted})


# --- the document ------------------------------------------------------------------------------------------------

@api.operation("GET", "/openapi.json", summary="This API's OpenAPI document", permission=None, tag="documents",
               response=Success(None, 200, "The OpenAPI 3.1 document.", media_type=JSON))
def openapi_document():
    """Public: describes every /api/v1 route, its schemas, its errors and the security scheme."""
    return document_for(api)


@bp.get("/api/docs")
def api_docs():
    """Public: the OpenAPI document rendered as a page."""
    return render_template("api/docs.html", docs=docs_view(document_for(api)))


@bp.cli.command("purge-idempotency-keys")
def purge_idempotency_keys_command() -> None:
    """Delete idempotency keys older than 24 hours (`flask --app app api purge-idempotency-keys`, e.g. daily)."""
    import click

    removed = purge_expired_keys()
    db.session.commit()
    click.echo(f"Removed {removed} expired idempotency key(s).")


# --- helpers -----------------------------------------------------------------------------------------------------

def _idempotency_key() -> str | None:
    value = request.headers.get(IDEMPOTENCY_KEY.name)
    if value is None:
        return None
    if not 1 <= len(value) <= IDEMPOTENCY_KEY.max_length or not _IDEMPOTENCY_KEY_TEXT.match(value):
        raise ValidationError(fields={IDEMPOTENCY_KEY.name: "1 to 255 visible ASCII characters, no spaces."})
    return value


def _created(body: dict, replayed: bool):
    headers = {"Location": _absolute(url_for("api.get_shipment", tracking_id=body["tracking_id"]))}
    if replayed:
        headers["Idempotent-Replayed"] = "true"
    return answer(Shipment, body, 201, headers)


def _absolute(path: str) -> str:
    return absolute_url(current_app.config["PUBLIC_BASE_URL"], path)


def _shipment(shipment, events=None) -> dict:
    data = shipment_to_dict(shipment, events, staff=True)
    data["label_url"] = _absolute(url_for("api.shipment_label", tracking_id=shipment.tracking_id))
    return data
