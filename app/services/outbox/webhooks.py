"""Webhook subscriptions and their deliveries, from the business side.

- Subscriptions belong to an owner (an API key's user, or the admin who created one): create, list, disable,
  enable, delete, rotate the signing secret. The secret is returned once, at creation or rotation.
- Deliveries are outbox rows (DESIGN rule 7): channel `webhook`, recipient `subscription:<id>`, subject the event
  type, queued by `queue_webhook_deliveries` in the transaction of the change (one INSERT … SELECT over tracking
  events × matching active subscriptions, for one change or a bulk of them). The outbox worker renders the payload
  when it sends (app.services.outbox.messages) and reports each attempt here (`record_attempt`), which also switches off
  a subscription that has failed for WEBHOOK_DISABLE_AFTER_HOURS and queues the admins' alert.
- `replay_delivery` gives a dead delivery a fresh start.

Every staff action writes its audit row in the same transaction; no secret ever goes into it. Functions flush,
never commit (the request commits). An `owner_id` argument limits a call to that owner's subscriptions (the API
and the admin pages: another owner's is NotFound); None means any (the worker and tests).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import secrets
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from flask import current_app
from sqlalchemy import String, and_, bindparam, case, cast, delete, exists, func, literal, select, true, update

from app.db.dialects import dialect_insert
from app.domain.status import Status
from app.domain.timeutil import isoformat_z, utcnow
from app.errors import Conflict, NotFound, ValidationError
from app.extensions import db
from app.models import Notification, Shipment, TrackingEvent, User
from app.models.webhook import (
    DESCRIPTION_MAX,
    ERROR_MAX,
    REASON_MAX,
    RESPONSE_KEEP,
    URL_MAX,
    WebhookAttempt,
    WebhookSubscription,
)
from app.services.outbox.queueing import MAX_ROW_ID, mark_outbox_changed, revive_dead
from app.services.staff.audit import record_audit

CHANNEL = "webhook"
ALERT_CHANNEL = "admin_email"
CREATED, STATUS_CHANGED, DELIVERED = "shipment.created", "shipment.status_changed", "shipment.delivered"
# A failed delivery's report (app.services.ndr) opened and resolved: each event type is chosen by a subscription of
# its own accord, and each goes on an outbox channel of its own (the same name as its event type), keyed by the
# report's own Delivery Attempted event: the outbox is unique per event, channel and recipient, and that event
# already carries the shipment.status_changed delivery.
NDR_OPENED, NDR_RESOLVED = "shipment.ndr_opened", "shipment.ndr_resolved"
NDR_EVENT_TYPES: tuple[str, ...] = (NDR_OPENED, NDR_RESOLVED)
NDR_CHANNELS = {NDR_OPENED: "ndr_opened", NDR_RESOLVED: "ndr_resolved"}
EVENT_TYPES: tuple[str, ...] = (CREATED, STATUS_CHANGED, DELIVERED, *NDR_EVENT_TYPES)
_EVENT_COLUMNS = {CREATED: "on_created", STATUS_CHANGED: "on_status_changed", DELIVERED: "on_delivered",
                  NDR_OPENED: "on_ndr_opened", NDR_RESOLVED: "on_ndr_resolved"}
RECIPIENT_PREFIX = "subscription:"
SECRET_PREFIX = "whsec_"  # noqa: S105 - the prefix of generated secrets, not a secret
MAX_OVERLAP_HOURS = 168
DELETED_REASON = "The webhook subscription was deleted."
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
                                ipaddress.ip_address("100.100.100.200")})
_NOTIFICATIONS = Notification.__table__


# --- where Waybill sends to -----------------------------------------------------------------------------------

def address_refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is not a public one (None if it is): loopback, private, link-local, metadata…"""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        address = address.ipv4_mapped
    if address in METADATA_ADDRESSES:
        return "a cloud metadata address"
    for flag, reason in (("is_loopback", "a loopback address"), ("is_private", "a private address"),
                         ("is_link_local", "a link-local address"), ("is_multicast", "a multicast address"),
                         ("is_reserved", "a reserved address"), ("is_unspecified", "an unspecified address")):
        if getattr(address, flag):
            return reason
    if isinstance(address, ipaddress.IPv4Address) and address in ipaddress.ip_network("100.64.0.0/10"):
        return "a shared (carrier-grade NAT) address"
    if not address.is_global:
        return "not a public address"
    return None


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str
    port: int
    path: str  # with the query


# Names that mean this machine or a cloud's metadata service wherever they are resolved (RFC 6761 reserves
# `localhost` and everything under it).
METADATA_NAMES = frozenset({"metadata", "metadata.google.internal", "metadata.goog", "instance-data",
                            "instance-data.ec2.internal"})
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


def host_refused(host: str, *, allow_private: bool) -> str | None:
    """Why a URL's host is not one Waybill sends to (None if it may be). Always: it must be an IP address or a
    host name (letters, digits, hyphens; no spaces), not something that only looks like one. Unless private
    destinations are allowed: an address must be public, in whatever form the resolver reads one (2130706433,
    0x7f000001, 0177.0.0.1, 127.1 and 0 are IPv4 addresses to it), and the name must not be `localhost` (or
    under it) nor a cloud metadata name. Other names are resolved and checked at each send (DNS rebinding)."""
    name = host.lower().removesuffix(".")
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = None
    if ":" in name:
        try:
            address = ipaddress.ip_address(name.split("%")[0])
        except ValueError:
            return f"{host} is not a valid address"
    else:
        try:
            ascii_name = name.encode("idna").decode("ascii")
        except UnicodeError:
            return f"{host} is not a valid host name"
        labels = ascii_name.split(".")
        if len(ascii_name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
            return f"{host} is not a valid host name"
        if _NUMERIC_LABEL.fullmatch(labels[-1]):  # no top-level domain is numeric: the resolver reads an address
            try:
                address = ipaddress.IPv4Address(socket.inet_aton(ascii_name))
            except (OSError, ValueError):
                return f"{host} is not a valid address"
        elif not allow_private:
            if ascii_name == "localhost" or ascii_name.endswith(".localhost"):
                return f"{host} is a loopback address"
            if ascii_name in METADATA_NAMES:
                return f"{host} is a cloud metadata address"
    if address is not None and not allow_private and (reason := address_refused(address)):
        return f"{host} is {reason}" + ("" if str(address) == name else f" ({address})")
    return None


def parse_destination(url: str, *, allow_private: bool) -> Destination:
    """The parts of an acceptable webhook URL; ValueError saying why not. The one check of a URL, made when
    subscribing and again at each send: only https:// unless private destinations are allowed; a host, no
    credentials; the host as host_refused allows. Names are resolved and their addresses checked when each
    delivery is sent (the answer may change: DNS rebinding)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValueError("not a valid URL") from exc
    scheme = parts.scheme.lower()
    if scheme not in ({"https", "http"} if allow_private else {"https"}):
        raise ValueError("only https:// URLs are allowed")
    if not parts.hostname or parts.username or parts.password:
        raise ValueError("the URL needs a host and must not carry credentials")
    if reason := host_refused(parts.hostname, allow_private=allow_private):
        raise ValueError(reason)
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Destination(scheme, parts.hostname, port or (443 if scheme == "https" else 80), path)


def _allow_private() -> bool:
    return bool(current_app.config.get("WEBHOOK_ALLOW_PRIVATE"))


# --- signing secrets, never stored -------------------------------------------------------------------------------

def _secret_key() -> bytes:
    """The key signing secrets are derived from, itself derived from SECRET_KEY (changing SECRET_KEY changes every
    subscription's secret: rotate them all after it, and give the receivers the new ones)."""
    return hmac.new(str(current_app.config["SECRET_KEY"]).encode(), b"waybill webhook signing secrets",
                    hashlib.sha256).digest()


def _new_seed() -> str:
    """What a subscription stores instead of its secret: 32 random bytes, worthless without SECRET_KEY."""
    return secrets.token_urlsafe(32)


def _secret_from(seed: str) -> str:
    """The signing secret a stored seed stands for: HMAC-SHA256 of the seed under the key from SECRET_KEY."""
    digest = hmac.new(_secret_key(), seed.encode(), hashlib.sha256).digest()
    return SECRET_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def signing_secrets(subscription: WebhookSubscription, now: datetime | None = None) -> list[str]:
    """The secrets that sign a delivery now, newest first: two during a rotation's overlap, else one."""
    now = now or utcnow()
    found = [_secret_from(subscription.secret_sealed)]
    if subscription.previous_secret_sealed and subscription.previous_secret_until \
            and subscription.previous_secret_until > now:
        found.append(_secret_from(subscription.previous_secret_sealed))
    return found


# --- subscriptions ----------------------------------------------------------------------------------------------

def events_of(subscription: WebhookSubscription) -> list[str]:
    return [name for name in EVENT_TYPES if getattr(subscription, _EVENT_COLUMNS[name])]


def _checked_input(url: object, events: object, description: object) -> tuple[str, list[str], str | None]:
    fields: dict[str, str] = {}
    if not isinstance(url, str) or not url.strip():
        fields["url"] = "Enter the https:// URL to send events to."
    elif len(url.strip()) > URL_MAX:
        fields["url"] = f"At most {URL_MAX} characters."
    else:
        try:
            parse_destination(url.strip(), allow_private=_allow_private())
        except ValueError as exc:
            fields["url"] = f"Not accepted: {exc}."
    if not isinstance(events, list) or not events or not all(isinstance(e, str) for e in events):
        fields["events"] = f"Choose at least one of: {', '.join(EVENT_TYPES)}."
    elif unknown := sorted({e for e in events if e not in EVENT_TYPES}):
        fields["events"] = f"Unknown event {unknown[0][:40]!r}; choose from: {', '.join(EVENT_TYPES)}."
    if description is not None and not isinstance(description, str):
        fields["description"] = "Must be a string."
    elif isinstance(description, str) and len(description.strip()) > DESCRIPTION_MAX:
        fields["description"] = f"At most {DESCRIPTION_MAX} characters."
    if fields:
        raise ValidationError(fields=fields)
    text = description.strip() if isinstance(description, str) else ""
    return url.strip(), [e for e in EVENT_TYPES if e in events], text or None  # type: ignore[union-attr,operator]


def create_subscription(owner_id: int, url: object, events: object, description: object = None, *,
                        actor: str) -> tuple[WebhookSubscription, str]:
    """Subscribe `url` to `events` for the owner; returns the subscription and its signing secret (shown once).

    Rules: only https:// (unless WEBHOOK_ALLOW_PRIVATE), no credentials in the URL, no address that is not
    public; events from EVENT_TYPES, at least one; description optional, short. Audited without the secret
    (and without the URL's path or query, which may hold a receiver's token).
    """
    url, chosen, text = _checked_input(url, events, description)
    seed = _new_seed()
    secret = _secret_from(seed)
    now = utcnow()
    subscription = WebhookSubscription(
        owner_id=owner_id, url=url, description=text, secret_sealed=seed, active=True,
        created_at=now, updated_at=now, **{column: name in chosen for name, column in _EVENT_COLUMNS.items()})
    db.session.add(subscription)
    db.session.flush()
    record_audit("webhook_created", actor=actor, target_type="webhook", target_id=subscription.id,
                 details={"host": urlsplit(url).hostname, "events": chosen})
    return subscription, secret


def list_subscriptions(owner_id: int | None = None) -> list[WebhookSubscription]:
    """Subscriptions, newest first (only the owner's when `owner_id` is given)."""
    query = select(WebhookSubscription).order_by(WebhookSubscription.id.desc())
    if owner_id is not None:
        query = query.where(WebhookSubscription.owner_id == owner_id)
    return list(db.session.scalars(query))


def get_subscription(subscription_id: int, owner_id: int | None = None) -> WebhookSubscription:
    """One subscription; NotFound when there is none (or it is another owner's)."""
    subscription = (db.session.get(WebhookSubscription, subscription_id)
                    if 0 < subscription_id <= MAX_ROW_ID else None)
    if subscription is None or (owner_id is not None and subscription.owner_id != owner_id):
        raise NotFound(f"No webhook subscription #{subscription_id}.")
    return subscription


def set_active(subscription_id: int, active: bool, *, actor: str, owner_id: int | None = None) -> WebhookSubscription:
    """Disable (nothing more is queued; queued deliveries end dead) or enable again (its failure clock restarts)."""
    subscription = get_subscription(subscription_id, owner_id)
    subscription.active = active
    subscription.failing_since = None
    subscription.disabled_reason = None if active else "Disabled by staff."
    subscription.updated_at = utcnow()
    db.session.flush()
    record_audit("webhook_updated", actor=actor, target_type="webhook", target_id=subscription.id,
                 details={"active": active})
    return subscription


def delete_subscription(subscription_id: int, *, actor: str, owner_id: int | None = None) -> None:
    """Delete a subscription and its attempts log; its deliveries still waiting end dead (and visible)."""
    subscription = get_subscription(subscription_id, owner_id)
    db.session.execute(
        update(Notification)
        .where(Notification.channel == CHANNEL, Notification.recipient == subscription.recipient,
               Notification.state == "pending")
        .values(state="dead", last_error=DELETED_REASON)
        .execution_options(synchronize_session=False))
    db.session.execute(delete(WebhookAttempt).where(WebhookAttempt.subscription_id == subscription.id))
    host = urlsplit(subscription.url).hostname
    db.session.delete(subscription)
    db.session.flush()
    record_audit("webhook_deleted", actor=actor, target_type="webhook", target_id=subscription_id,
                 details={"host": host})


def rotate_secret(subscription_id: int, *, actor: str, overlap_hours: object = None,
                  owner_id: int | None = None) -> tuple[WebhookSubscription, str]:
    """A new signing secret (returned once); the old one keeps signing too (a second v1) for `overlap_hours`
    (default WEBHOOK_ROTATION_OVERLAP_HOURS, 0 to 168), so receivers can switch without losing an event."""
    if overlap_hours is None:
        overlap_hours = current_app.config["WEBHOOK_ROTATION_OVERLAP_HOURS"]
    if isinstance(overlap_hours, bool) or not isinstance(overlap_hours, int | float) \
            or not 0 <= overlap_hours <= MAX_OVERLAP_HOURS:
        raise ValidationError(fields={"overlap_hours": f"A number of hours from 0 to {MAX_OVERLAP_HOURS}."})
    subscription = get_subscription(subscription_id, owner_id)
    now = utcnow()
    seed = _new_seed()
    secret = _secret_from(seed)
    subscription.previous_secret_sealed = subscription.secret_sealed if overlap_hours > 0 else None
    subscription.previous_secret_until = now + timedelta(hours=float(overlap_hours)) if overlap_hours > 0 else None
    subscription.secret_sealed = seed
    subscription.updated_at = now
    db.session.flush()
    record_audit("webhook_updated", actor=actor, target_type="webhook", target_id=subscription.id,
                 details={"secret_rotated": True, "overlap_hours": overlap_hours})
    return subscription, secret


# --- queueing deliveries ----------------------------------------------------------------------------------------

def _queue_statement(by: str):
    """INSERT … SELECT of the deliveries for the events chosen by `by` (a column of tracking_events, matched
    against the expanding parameter `ids`). Built once: building it per change cost more than running it."""
    events, subscriptions = TrackingEvent.__table__, WebhookSubscription.__table__
    earlier = events.alias("earlier")
    chosen = (select(events.c.id, events.c.shipment_id, events.c.status, events.c.occurred_at,
                     ~exists().where(earlier.c.shipment_id == events.c.shipment_id, earlier.c.id < events.c.id)
                     .label("is_first"))
              .where(events.c[by].in_(bindparam("ids", expanding=True)))
              .subquery("chosen"))
    event_type = case(
        (chosen.c.is_first, case((subscriptions.c.on_created, literal(CREATED)), else_=None)),
        (and_(chosen.c.status == Status.DELIVERED.value, subscriptions.c.on_delivered), literal(DELIVERED)),
        (subscriptions.c.on_status_changed, literal(STATUS_CHANGED)),
        else_=None,
    ).label("event_type")
    pairs = (select(chosen.c.shipment_id, chosen.c.id.label("event_id"),
                    (literal(RECIPIENT_PREFIX) + cast(subscriptions.c.id, String)).label("recipient"), event_type,
                    chosen.c.occurred_at)
             .select_from(chosen.join(subscriptions, true()))
             .where(subscriptions.c.active)
             .subquery("pairs"))
    return _NOTIFICATIONS.insert().from_select(
        ["shipment_id", "event_id", "channel", "recipient", "subject", "state", "attempts", "next_attempt_at",
         "created_at"],
        select(pairs.c.shipment_id, pairs.c.event_id, literal(CHANNEL), pairs.c.recipient, pairs.c.event_type,
               literal("pending"), literal(0), pairs.c.occurred_at, pairs.c.occurred_at)
        .where(pairs.c.event_type.is_not(None)))


_QUEUE_FOR_EVENTS = _queue_statement("id")
_QUEUE_FOR_SHIPMENTS = _queue_statement("shipment_id")


def created_deliveries_insert_from(first_events):
    """The `shipment.created` deliveries for the Booked events of `first_events` (a selectable with id,
    shipment_id and occurred_at: the first events of shipments booked by the same statement), for the booking
    statement that writes a shipment, its event and its messages in one round trip: the rows
    queue_webhook_deliveries(shipment_ids=…) would queue for them. The caller marks the session."""
    subscriptions = WebhookSubscription.__table__
    return _NOTIFICATIONS.insert().from_select(
        ["shipment_id", "event_id", "channel", "recipient", "subject", "state", "attempts", "next_attempt_at",
         "created_at"],
        select(first_events.c.shipment_id, first_events.c.id, literal(CHANNEL),
               literal(RECIPIENT_PREFIX) + cast(subscriptions.c.id, String), literal(CREATED), literal("pending"),
               literal(0), first_events.c.occurred_at, first_events.c.occurred_at)
        .select_from(first_events.join(subscriptions, and_(subscriptions.c.active, subscriptions.c.on_created))))


def queue_webhook_deliveries(event_ids: Iterable[int] | None = None, *,
                             shipment_ids: Iterable[int] | None = None) -> int:
    """Queue one delivery per (tracking event, active subscription that wants it), in the caller's transaction.

    The events are `event_ids`, or every event of `shipment_ids` (a booking: its Booked event). One INSERT …
    SELECT, for one change or thousands. The event type: a shipment's first event is `shipment.created`; a
    Delivered event is `shipment.delivered` for subscriptions that want it, else `shipment.status_changed`;
    every other event is `shipment.status_changed`. One delivery per event and subscription (the outbox's
    unique key), so a subscription to both status_changed and delivered gets the delivered one. Returns the
    number of deliveries queued.
    """
    if event_ids is not None:
        statement, ids = _QUEUE_FOR_EVENTS, list(event_ids)
    elif shipment_ids is not None:
        statement, ids = _QUEUE_FOR_SHIPMENTS, list(shipment_ids)
    else:
        raise TypeError("queue_webhook_deliveries needs event_ids or shipment_ids")
    if not ids:
        return 0
    queued = db.session.connection().execute(statement, {"ids": ids}).rowcount
    if queued:
        mark_outbox_changed(db.session)
    return queued or 0


def queue_ndr_deliveries(event_type: str, report_event_id: int, shipment_id: int, now: datetime) -> int:
    """Queue `event_type` (NDR_OPENED or NDR_RESOLVED) about the report opened by `report_event_id` for every
    active subscription that chose it, in the caller's transaction (one INSERT … SELECT; a delivery queued
    already is left as it is). Returns how many were queued."""
    subscriptions = WebhookSubscription.__table__
    statement = dialect_insert(_NOTIFICATIONS).from_select(
        ["shipment_id", "event_id", "channel", "recipient", "subject", "state", "attempts", "next_attempt_at",
         "created_at"],
        select(literal(shipment_id), literal(report_event_id), literal(NDR_CHANNELS[event_type]),
               literal(RECIPIENT_PREFIX) + cast(subscriptions.c.id, String), literal(event_type),
               literal("pending"), literal(0), literal(now, _NOTIFICATIONS.c.next_attempt_at.type),
               literal(now, _NOTIFICATIONS.c.created_at.type))
        .where(subscriptions.c.active, subscriptions.c[_EVENT_COLUMNS[event_type]])).on_conflict_do_nothing()
    queued = db.session.execute(statement).rowcount or 0
    if queued:
        mark_outbox_changed(db.session)
    return queued


# --- what the outbox worker reports -----------------------------------------------------------------------------

def subscription_for(recipient: str) -> WebhookSubscription | None:
    """The subscription an outbox row's recipient names (None: deleted, or not a subscription)."""
    if not recipient.startswith(RECIPIENT_PREFIX) or not recipient[len(RECIPIENT_PREFIX):].isdigit():
        return None
    subscription_id = int(recipient[len(RECIPIENT_PREFIX):])
    return db.session.get(WebhookSubscription, subscription_id) if 0 < subscription_id <= MAX_ROW_ID else None


class SubscriptionGone(LookupError):
    """The subscription was deleted while one of its deliveries was in flight: nothing is left to log it to."""


def record_attempt(subscription: WebhookSubscription, notification_id: int, attempt: int, *, delivered: bool,
                   status_code: int | None = None, duration_ms: int = 0, response_body: str | None = None,
                   error: str | None = None, now: datetime | None = None) -> bool:
    """Log one delivery attempt, in the worker's transaction, and keep the subscription's failure clock.

    A success stops the clock. A failure starts it (if it is not running); once it has run for
    WEBHOOK_DISABLE_AFTER_HOURS the subscription is disabled (by one worker only: a conditional UPDATE) and
    the admins' alert email is queued. Returns True when this attempt disabled the subscription. Raises
    SubscriptionGone, having written nothing, when the subscription was deleted since the delivery was claimed.
    """
    now = now or utcnow()
    body = response_body.encode()[:RESPONSE_KEEP].decode("utf-8", "ignore") if response_body else None
    table = WebhookSubscription.__table__
    # The subscription's row is locked against deletion until the worker commits (PostgreSQL: FOR KEY SHARE; a
    # deletion under way is waited for, and then the row is gone) and the attempt is inserted only while the row
    # exists (one statement: SQLite's writes are serial), so a deletion never meets a foreign-key error here.
    live = select(table.c.id).where(table.c.id == subscription.id)
    attempts = WebhookAttempt.__table__
    values = {"notification_id": notification_id, "attempt": attempt, "attempted_at": now,
              "status_code": status_code, "duration_ms": max(int(duration_ms), 0), "response_body": body,
              "error": error[:ERROR_MAX] if error else None}
    if db.session.scalar(live.with_for_update(key_share=True)) is None or not db.session.execute(
            attempts.insert().from_select(
                ["subscription_id", *values],
                select(table.c.id, *(literal(value, attempts.c[name].type) for name, value in values.items()))
                .where(table.c.id == subscription.id))).rowcount:
        raise SubscriptionGone(f"Webhook subscription #{subscription.id} was deleted.")
    table = WebhookSubscription.__table__
    if delivered:
        db.session.execute(update(table).where(table.c.id == subscription.id, table.c.failing_since.is_not(None))
                           .values(failing_since=None))
        return False
    db.session.execute(update(table).where(table.c.id == subscription.id, table.c.failing_since.is_(None))
                       .values(failing_since=now))
    cutoff = now - timedelta(hours=float(current_app.config["WEBHOOK_DISABLE_AFTER_HOURS"]))
    reason = f"Deliveries failed for {current_app.config['WEBHOOK_DISABLE_AFTER_HOURS']:g} hours in a row."
    disabled = db.session.execute(
        update(table).where(table.c.id == subscription.id, table.c.active, table.c.failing_since <= cutoff)
        .values(active=False, disabled_reason=reason[:REASON_MAX], updated_at=now)
        .returning(table.c.id)).first()
    db.session.expire(subscription)
    if disabled is None:
        return False
    notification = db.session.get(Notification, notification_id)
    if notification is not None:
        _queue_admin_alert(subscription.id, urlsplit(subscription.url).hostname or "", notification, now)
    record_audit("webhook_updated", actor="system", target_type="webhook", target_id=subscription.id,
                 details={"active": False, "reason": reason})
    return True


def _queue_admin_alert(subscription_id: int, host: str, about: Notification, now: datetime) -> None:
    """One email per ADMIN_ALERT_EMAILS address, through the outbox (channel admin_email). An outbox row names a
    shipment and an event: the delivery that tipped the subscription over."""
    addresses = current_app.config.get("ADMIN_ALERT_EMAILS") or []
    if not addresses:
        return
    subject = f"Webhook subscription #{subscription_id} disabled ({host})"[:255]
    db.session.execute(dialect_insert(_NOTIFICATIONS).values([
        {"shipment_id": about.shipment_id, "event_id": about.event_id, "channel": ALERT_CHANNEL,
         "recipient": address, "subject": subject, "state": "pending", "attempts": 0, "next_attempt_at": now,
         "created_at": now}
        for address in addresses]).on_conflict_do_nothing())
    mark_outbox_changed(db.session)


# --- dead deliveries --------------------------------------------------------------------------------------------

def replay_delivery(notification_id: int, *, actor: str, owner_id: int | None = None) -> Notification:
    """Send a dead delivery again (queueing.revive_dead: pending, no attempts counted, due now), with the same
    Waybill-Event-Id, so a receiver that did get it can tell. Rules: only dead webhook rows (Conflict
    otherwise), of an active subscription (of this owner, when given); NotFound for an unknown id."""
    notification = (db.session.get(Notification, notification_id) if 0 < notification_id <= MAX_ROW_ID else None)
    subscription = subscription_for(notification.recipient) if notification is not None \
        and notification.channel == CHANNEL else None
    if notification is None or subscription is None or (owner_id is not None and subscription.owner_id != owner_id):
        raise NotFound(f"No webhook delivery #{notification_id}.")
    if not subscription.active:
        raise Conflict(f"Webhook subscription #{subscription.id} is disabled; enable it before replaying.")
    revived = revive_dead(notification_id)
    db.session.refresh(notification)
    if not revived:
        raise Conflict(f"Delivery #{notification_id} is {notification.state}; only dead ones can be replayed.",
                       state=notification.state)
    record_audit("webhook_delivery_replayed", actor=actor, target_type="notification", target_id=notification_id,
                 details={"subscription_id": subscription.id, "event": notification.subject})
    return notification


# --- what staff and integrators see -----------------------------------------------------------------------------

@dataclass(frozen=True)
class SubscriptionView:
    subscription: WebhookSubscription
    owner: str
    attempts: list[WebhookAttempt]
    dead: list[tuple[Notification, str]]  # dead deliveries with their tracking IDs
    pending: int


def overview(owner_id: int | None = None, attempts: int = 5, dead: int = 20) -> list[SubscriptionView]:
    """Every subscription (the owner's only, when given) with its latest attempts and its dead deliveries."""
    views = []
    for subscription in list_subscriptions(owner_id):
        owner = db.session.scalar(select(User.username).where(User.id == subscription.owner_id)) or "?"
        recent = list(db.session.scalars(
            select(WebhookAttempt).where(WebhookAttempt.subscription_id == subscription.id)
            .order_by(WebhookAttempt.attempted_at.desc(), WebhookAttempt.id.desc()).limit(attempts)))
        rows = db.session.execute(
            select(Notification, Shipment.tracking_id).join(Shipment, Shipment.id == Notification.shipment_id)
            .where(Notification.channel == CHANNEL, Notification.recipient == subscription.recipient,
                   Notification.state == "dead")
            .order_by(Notification.id.desc()).limit(dead)).all()
        waiting = db.session.scalar(select(func.count()).select_from(Notification).where(
            Notification.channel == CHANNEL, Notification.recipient == subscription.recipient,
            Notification.state.in_(("pending", "sending")))) or 0
        views.append(SubscriptionView(subscription, owner, recent, [(n, t) for n, t in rows], waiting))
    return views


def subscription_document(subscription: WebhookSubscription) -> dict:
    """A subscription as JSON (never its secret)."""
    return {
        "id": subscription.id,
        "url": subscription.url,
        "events": events_of(subscription),
        "description": subscription.description,
        "active": subscription.active,
        "disabled_reason": subscription.disabled_reason,
        "failing_since": isoformat_z(subscription.failing_since),
        "previous_secret_until": isoformat_z(subscription.previous_secret_until),
        "created_at": isoformat_z(subscription.created_at),
        "updated_at": isoformat_z(subscription.updated_at),
    }


def attempt_document(attempt: WebhookAttempt) -> dict:
    return {"delivery_id": attempt.notification_id, "attempt": attempt.attempt,
            "attempted_at": isoformat_z(attempt.attempted_at), "status_code": attempt.status_code,
            "duration_ms": attempt.duration_ms, "response_body": attempt.response_body, "error": attempt.error}


def delivery_document(notification: Notification, tracking_id: str) -> dict:
    return {"id": notification.id, "event_id": event_id_of(notification.id), "type": notification.subject,
            "tracking_id": tracking_id, "state": notification.state, "attempts": notification.attempts,
            "last_error": notification.last_error, "created_at": isoformat_z(notification.created_at),
            "sent_at": isoformat_z(notification.sent_at)}


def view_document(view: SubscriptionView) -> dict:
    return {**subscription_document(view.subscription), "owner": view.owner, "pending_deliveries": view.pending,
            "recent_attempts": [attempt_document(a) for a in view.attempts],
            "dead_deliveries": [delivery_document(n, t) for n, t in view.dead]}


def event_id_of(notification_id: int) -> str:
    """The Waybill-Event-Id of a delivery: the same on every attempt and replay, unique across deliveries."""
    return f"evt_{notification_id}"
