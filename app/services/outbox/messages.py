"""What an outbox row says, rendered by the outbox worker when it sends the row (not in the request that queued it).

A row names a shipment, one of its tracking events, a channel and a recipient. `load_facts` reads what the
messages of a claimed batch need in three queries; `render` picks the channel's render function
(`RENDERERS[channel]`), so a new channel (SMS, webhooks) adds one function and one entry.

"What was true at that event": events are append-only and the shipment fields a message shows (tracking ID,
names, destination) are fixed at booking, so the event, and the timeline up to and including it, read later are
what they were when the row was queued. Should shipment fields become editable, the row must keep a copy of them.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from flask import current_app, render_template
from flask_babel import gettext
from markupsafe import escape
from sqlalchemy import select

from app.domain import links
from app.domain.status import Status, held_from_timeline
from app.domain.timeutil import isoformat_z
from app.extensions import db
from app.i18n.locales import format_estimate, format_local_date, format_local_time, speaking, status_label
from app.models import NonDeliveryReport, Shipment, TrackingEvent
from app.services.field import delivery_codes
from app.services.ndr import queries as ndr_queries
from app.services.ndr import reports as ndr_reports
from app.services.ndr.reports import LAST_CHANCE_EMAIL, LAST_CHANCE_SMS
from app.services.operations.alert_digest import DIGEST_CHANNEL, render_digest
from app.services.outbox import preferences, webhooks
from app.services.shipments.estimates import EstimateTable, estimate, estimate_table
from app.services.shipments.proofs import ATTEMPT_REASONS
from app.services.shipments.queries import customer_timelines

TIMELINE_LENGTH = 5  # events shown in an email, newest first


class OutboxRow(Protocol):
    """What rendering needs of a claimed outbox row."""

    id: int
    channel: str
    recipient: str
    subject: str
    shipment_id: int
    event_id: int
    created_at: datetime


@dataclass(frozen=True)
class MessageFacts:
    """The shipments and their events (oldest first) that a batch of rows is about, and the learned
    delivery estimates for their destinations."""

    shipments: dict[int, Any]
    events: dict[int, list[Any]]
    estimates: EstimateTable = field(default_factory=dict)

    def event_and_timeline(self, row: OutboxRow) -> tuple[Any, Any, list[Any]]:
        """(shipment, event, events up to and including it, newest first); LookupError if one is missing."""
        shipment = self.shipments.get(row.shipment_id)
        history = self.events.get(row.shipment_id, [])
        position = next((i for i, e in enumerate(history) if e.id == row.event_id), None)
        if shipment is None or position is None:
            raise LookupError(f"notification #{row.id}: its shipment or event is missing")
        return shipment, history[position], history[position::-1]


@dataclass(frozen=True)
class RenderedEmail:
    subject: str
    body_text: str
    body_html: str
    unsubscribe_url: str | None = None  # List-Unsubscribe (RFC 8058 one-click) for this shipment's emails


@dataclass(frozen=True)
class RenderedSms:
    """The SMS in the order the sender prefers them: with the link to the recipient's choices, then without
    it (the sender sends the first that fits the segment limit, app.notifier.sms.sms_fits)."""

    texts: tuple[str, ...]


def load_facts(rows: Iterable[OutboxRow]) -> MessageFacts:
    """Everything the messages of `rows` show, in three queries (shipments; all their events with their proof
    of delivery: who received it, or why an attempt failed; the learned estimates for their destinations). The
    staff-only note is never read: a message can only show what is meant for the customer."""
    shipment_ids = sorted({row.shipment_id for row in rows})
    if not shipment_ids:
        return MessageFacts({}, {})
    shipments = {s.id: s for s in db.session.execute(
        select(Shipment.id, Shipment.tracking_id, Shipment.sender_name, Shipment.receiver_name,
               Shipment.destination, Shipment.language, Shipment.promised_by)
        .where(Shipment.id.in_(shipment_ids)))}
    events = customer_timelines(shipment_ids)
    return MessageFacts(shipments, events, estimate_table(s.destination for s in shipments.values()))


# Where each kind of status message's templates are: the recipient's, with a default for any status, and the
# sender's notices, for the statuses the sender hears of only (preferences.SENDER_STATUSES): a notice about another
# status fails visibly rather than greet the sender as the recipient.
RECIPIENT_EMAILS, SENDER_EMAILS = "email/status", "email/sender"
RECIPIENT_SMS, SENDER_SMS = "sms", "sms/sender"


def render_email(row: OutboxRow, facts: MessageFacts) -> RenderedEmail:
    """The status email: the event's own template (by status, else the default), plain text and HTML, in the
    language the shipment was booked in, with the estimated delivery as it stood at that event."""
    return _email(row, facts, RECIPIENT_EMAILS)


def render_sender_email(row: OutboxRow, facts: MessageFacts) -> RenderedEmail:
    """The sender's notice of the return leg (`email/sender/<status>`): to the sender, about their parcel coming
    back or being back, in the language the shipment was booked in, with the link to the sender's own choices."""
    return _email(row, facts, SENDER_EMAILS)


def _email(row: OutboxRow, facts: MessageFacts, folder: str) -> RenderedEmail:
    shipment, event, timeline = facts.event_and_timeline(row)
    with speaking(shipment.language):
        return _render_email(row, shipment, event, timeline, facts.estimates, folder)


def _render_email(row: OutboxRow, shipment: Any, event: Any, timeline: list[Any],
                  estimates: EstimateTable, folder: str) -> RenderedEmail:
    config = current_app.config
    tz_name = config["DISPLAY_TIMEZONE"]
    expected = estimate(shipment.destination, event.status, event.occurred_at,
                        held_from=held_from_timeline(e.status for e in reversed(timeline)),
                        default_factor=float(config["ETA_DEFAULT_FACTOR"]), table=estimates)
    context = {
        "estimate": expected,
        "estimate_text": format_estimate(expected.expected, expected.latest, tz_name) if expected else None,
        # Beside the estimate, while there is one: the day the booking was promised by.
        "promised_text": format_local_date(shipment.promised_by, tz_name)
        if expected and getattr(shipment, "promised_by", None) else None,
        "shipment": shipment,
        "event": event,
        "time_local": format_local_time(event.occurred_at, tz_name),
        "time_utc": format_local_time(event.occurred_at, "UTC"),
        "received_by": getattr(event, "received_by", None),
        "attempt_reason": ATTEMPT_REASONS.get(getattr(event, "attempt_reason", None) or ""),
        "timeline": [
            {"status": e.status, "location": e.location, "time_local": format_local_time(e.occurred_at, tz_name),
             "current": e.id == event.id}
            for e in timeline[:TIMELINE_LENGTH]
        ],
        "tracking_url": links.tracking_url(config["PUBLIC_BASE_URL"], shipment.tracking_id),
        "choices_url": preferences.choices_url(row.shipment_id, row.channel),  # this person's, on this channel
        "ndr_url": _answer_url(row, shipment, event, folder),
    }
    return RenderedEmail(
        # The row's subject is the English one (the outbox page and logs show it); the email speaks the booking's.
        subject=gettext("Shipment %(tracking_id)s: %(status)s", tracking_id=shipment.tracking_id,
                        status=status_label(event.status)),
        body_text=render_template(_status_templates(folder, event.status, "txt"), **context),
        body_html=render_template(_status_templates(folder, event.status, "html"), **context),
        unsubscribe_url=context["choices_url"],
    )


def render_sms(row: OutboxRow, facts: MessageFacts) -> RenderedSms:
    """The status SMS: the status's template (`sms/<status>.txt`, else `sms/default.txt`), with the link to the
    recipient's choices, and without it for when the text would not fit; in the language the shipment was booked in."""
    return _sms(row, facts, RECIPIENT_SMS)


def render_sender_sms(row: OutboxRow, facts: MessageFacts) -> RenderedSms:
    """The sender's SMS notice of the return leg (`sms/sender/<status>.txt`), as render_sms, with the link to the
    sender's own choices."""
    return _sms(row, facts, SENDER_SMS)


def _sms(row: OutboxRow, facts: MessageFacts, folder: str) -> RenderedSms:
    shipment, event, _timeline = facts.event_and_timeline(row)
    templates = _status_templates(folder, event.status, "txt")
    context = {"shipment": shipment, "event": event, "ndr_url": _answer_url(row, shipment, event, folder),
               "tracking_url": links.tracking_url(current_app.config["PUBLIC_BASE_URL"], shipment.tracking_id)}
    with speaking(shipment.language):  # the booking's language, like its emails
        return RenderedSms(texts=(
            render_template(templates, **context,
                            choices_url=preferences.choices_url(row.shipment_id, row.channel)).strip(),
            render_template(templates, **context, choices_url=None).strip(),
        ))




@dataclass(frozen=True)
class RenderedWebhook:
    event_id: str  # the Waybill-Event-Id header: one per delivery, the same on every attempt
    event_type: str
    body: bytes  # the exact bytes that are signed and sent


def render_webhook(row: OutboxRow, facts: MessageFacts) -> RenderedWebhook:
    """A webhook delivery's JSON: the event and the shipment as staff see it (it goes to an integrator), with
    the shipment's status as of this event; a Delivered or Returned to Sender event also names who received the
    parcel. Rendered when
    sent, from append-only facts, so every attempt and a replay send the same document (only the signature's
    timestamp differs)."""
    shipment, event, timeline = facts.event_and_timeline(row)
    staff = db.session.execute(
        select(Shipment.mobile, Shipment.email, Shipment.created_at).where(Shipment.id == row.shipment_id)).one()
    note = db.session.scalar(select(TrackingEvent.note).where(TrackingEvent.id == row.event_id))
    event_id = webhooks.event_id_of(row.id)
    document = {
        "id": event_id,
        "type": row.subject,
        "created": isoformat_z(event.occurred_at),
        "data": {
            "shipment": {
                "tracking_id": shipment.tracking_id, "status": event.status,
                "sender_name": shipment.sender_name, "receiver_name": shipment.receiver_name,
                "mobile": staff.mobile, "email": staff.email, "destination": shipment.destination,
                "created_at": isoformat_z(staff.created_at),
                "tracking_url": links.tracking_url(current_app.config["PUBLIC_BASE_URL"], shipment.tracking_id),
            },
            "event": {"status": event.status, "location": event.location, "note": note,
                      "customer_message": event.customer_message, "occurred_at": isoformat_z(event.occurred_at)},
            "previous_status": timeline[1].status if len(timeline) > 1 else None,
        },
    }
    if event.status in (Status.DELIVERED, Status.RETURNED_TO_SENDER):  # a handover: who took the parcel
        document["data"]["event"]["received_by"] = event.received_by
    return RenderedWebhook(event_id, row.subject, json.dumps(document, separators=(",", ":")).encode())


def _answer_url(row: OutboxRow, shipment: Any, event: Any, folder: str) -> str | None:
    """The recipient's answer page (/r/<token>) for a message about a failed attempt, else None. The page speaks
    the booking's language by itself; an email's link also says so (`?lang=`), an SMS has no room for it."""
    if folder not in (RECIPIENT_EMAILS, RECIPIENT_SMS) or event.status != Status.DELIVERY_ATTEMPTED:
        return None
    return ndr_reports.answer_url(row.shipment_id, shipment.language if folder == RECIPIENT_EMAILS else None)


def render_ndr_webhook(row: OutboxRow, facts: MessageFacts) -> RenderedWebhook:
    """A `shipment.ndr_opened` or `shipment.ndr_resolved` delivery: the report (as staff see it) and its parcel.
    The opened one says what was true when the report opened; the resolved one the closed report, which no longer
    changes: every attempt and a replay send the same document."""
    shipment, event, _timeline = facts.event_and_timeline(row)
    report = db.session.scalars(select(NonDeliveryReport).where(NonDeliveryReport.event_id == row.event_id)).first()
    if report is None:
        raise LookupError(f"notification #{row.id}: its non-delivery report is missing")
    details = ndr_queries.report_to_dict(report, shipment.tracking_id, staff=True)
    if row.subject == webhooks.NDR_OPENED:
        details = {name: details[name] for name in ("id", "tracking_id", "attempt", "reason", "reason_label",
                                                    "opened_at")}
        created = report.opened_at
    else:
        created = report.closed_at or report.opened_at
    event_id = webhooks.event_id_of(row.id)
    document = {"id": event_id, "type": row.subject, "created": isoformat_z(created), "data": {
        "shipment": {"tracking_id": shipment.tracking_id,
                     "tracking_url": links.tracking_url(current_app.config["PUBLIC_BASE_URL"], shipment.tracking_id)},
        "event": {"status": event.status, "location": event.location, "occurred_at": isoformat_z(event.occurred_at)},
        "ndr": details}}
    return RenderedWebhook(event_id, row.subject, json.dumps(document, separators=(",", ":")).encode())


def _last_chance_context(row: OutboxRow, facts: MessageFacts) -> tuple[Any, dict[str, Any]]:
    shipment, _event, _timeline = facts.event_and_timeline(row)
    report = db.session.scalars(select(NonDeliveryReport).where(NonDeliveryReport.event_id == row.event_id)).first()
    deadline = report.deadline if report is not None and report.state == "open" else None
    return shipment, {
        "shipment": shipment, "attempt": report.attempt if report is not None else 0,
        "deadline_text": format_local_time(deadline, current_app.config["DISPLAY_TIMEZONE"]) if deadline else None,
        "ndr_url": ndr_reports.answer_url(row.shipment_id),
        "tracking_url": links.tracking_url(current_app.config["PUBLIC_BASE_URL"], shipment.tracking_id)}


def render_last_chance_email(row: OutboxRow, facts: MessageFacts) -> RenderedEmail:
    """The recipient's last chance after the last failed attempt (app.services.ndr.steps): answer, or the parcel
    goes back to its sender; in the language the shipment was booked in."""
    shipment, context = _last_chance_context(row, facts)
    with speaking(shipment.language):
        return RenderedEmail(
            subject=gettext("Last chance for shipment %(tracking_id)s", tracking_id=shipment.tracking_id),
            body_text=render_template("email/ndr_last_chance.txt", **context),
            body_html=render_template("email/ndr_last_chance.html", **context))


def render_last_chance_sms(row: OutboxRow, facts: MessageFacts) -> RenderedSms:
    """The last chance by SMS, as render_last_chance_email."""
    shipment, context = _last_chance_context(row, facts)
    with speaking(shipment.language):
        return RenderedSms(texts=(render_template("sms/ndr_last_chance.txt", **context).strip(),))


def render_admin_alert(row: OutboxRow, facts: MessageFacts) -> RenderedEmail:
    """The admins' email about a webhook subscription that was switched off (its subject says which)."""
    link = links.absolute_url(current_app.config["PUBLIC_BASE_URL"], "/admin/webhooks")
    text = (f"{row.subject}.\n\nIts deliveries kept failing, so Waybill stopped sending to it. Check the "
            f"receiver, enable the subscription again and replay its dead deliveries at:\n{link}\n")
    html = (f"<p>{escape(row.subject)}.</p><p>Its deliveries kept failing, so Waybill stopped sending to it. "
            f"Check the receiver, enable the subscription again and replay its dead deliveries at "
            f"<a href=\"{escape(link)}\">{escape(link)}</a>.</p>")
    return RenderedEmail(subject=row.subject, body_text=text, body_html=html)


def render_alert_digest(row: OutboxRow, facts: MessageFacts) -> RenderedEmail:
    """The admins' digest of new operational alerts (app.services.operations.alert_digest): the alerts stamped
    with the row's creation time, so every attempt sends the same list."""
    link = links.absolute_url(current_app.config["PUBLIC_BASE_URL"], "/admin/alerts")
    digest = render_digest(row.subject, row.created_at, link)
    return RenderedEmail(subject=digest.subject, body_text=digest.body_text, body_html=digest.body_html)


def render_code_email(row: OutboxRow, facts: MessageFacts) -> RenderedEmail:
    """The recipient's delivery code (app.services.field.delivery_codes), derived now: it is stored nowhere, in
    the language the shipment was booked in. No link to the choices: it is not a status update."""
    shipment, context = _code_context(row, facts)
    with speaking(shipment.language):
        return RenderedEmail(
            subject=gettext("Delivery code for shipment %(tracking_id)s", tracking_id=shipment.tracking_id),
            body_text=render_template("email/delivery_code.txt", **context),
            body_html=render_template("email/delivery_code.html", **context))


def render_code_sms(row: OutboxRow, facts: MessageFacts) -> RenderedSms:
    """The delivery code by SMS, as render_code_email."""
    shipment, context = _code_context(row, facts)
    with speaking(shipment.language):
        return RenderedSms(texts=(render_template("sms/delivery_code.txt", **context).strip(),))


def _code_context(row: OutboxRow, facts: MessageFacts) -> tuple[Any, dict[str, Any]]:
    shipment, _event, _timeline = facts.event_and_timeline(row)
    return shipment, {"shipment": shipment, "code": delivery_codes.code_for(row.shipment_id, row.event_id),
                      "tracking_url": links.tracking_url(current_app.config["PUBLIC_BASE_URL"], shipment.tracking_id)}


RENDERERS: dict[str, Callable[[OutboxRow, MessageFacts], Any]] = {
    "email": render_email, "sms": render_sms, "webhook": render_webhook, "admin_email": render_admin_alert,
    "sender_email": render_sender_email, "sender_sms": render_sender_sms, DIGEST_CHANNEL: render_alert_digest,
    delivery_codes.CODE_EMAIL: render_code_email, delivery_codes.CODE_SMS: render_code_sms,
    webhooks.NDR_CHANNELS[webhooks.NDR_OPENED]: render_ndr_webhook,
    webhooks.NDR_CHANNELS[webhooks.NDR_RESOLVED]: render_ndr_webhook,
    LAST_CHANCE_EMAIL: render_last_chance_email, LAST_CHANCE_SMS: render_last_chance_sms}


def render(row: OutboxRow, facts: MessageFacts):
    """The message for `row`, by its channel's render function; LookupError for a channel nobody renders."""
    renderer = RENDERERS.get(row.channel)
    if renderer is None:
        raise LookupError(f"notification #{row.id}: no renderer for channel {row.channel!r}")
    return renderer(row, facts)


def status_slug(status: str) -> str:
    """ "Out for Delivery" → "out_for_delivery": a status's template name."""
    return "_".join(status.lower().split())


def _status_templates(folder: str, status: str, extension: str) -> list[str]:
    """The templates to try for a status message: its status's, then the recipient's default (see
    RECIPIENT_EMAILS)."""
    names = [f"{folder}/{status_slug(status)}.{extension}"]
    if folder in (RECIPIENT_EMAILS, RECIPIENT_SMS):
        names.append(f"{folder}/default.{extension}")
    return names
