"""Preferences: which messages a shipment's recipient gets on each channel, and the defaults an admin sets; and
which notices its sender gets.

A recipient chooses per shipment and channel (email, sms): all updates, only the delivery day, or none. Without a
choice the channel's defaults decide: a status notifies when an admin said so (NotificationDefault), else by the
built-in rule (every status by email; the SMS_STATUSES setting by SMS).

The rules are SQL conditions, so the outbox applies them in the statement that queues a change's messages
(app.services.outbox.queueing) and again when the worker claims a row (a recipient may turn a channel off after a
message was queued: that message is `suppressed`, never sent).

The sender hears of the return leg only (SENDER_STATUSES), on channels of its own (sender_email, sender_sms), at
the contacts given at booking. The admin's defaults do not apply to it; the sender's own choice, made through the
link in a notice as a recipient makes theirs, does (`notifies_sender`, and `turned_off` when the worker claims it).

The recipient's credential is a signed token in the link of every message (itsdangerous, salted, naming the
shipment and the channel, with no expiry: a late click must still work). The token is the only proof needed for
the one-click unsubscribe (RFC 8058), so it never grants anything else: no personal data is shown for it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from flask import current_app
from flask_babel import gettext
from flask_babel import lazy_gettext as _l
from itsdangerous import BadData, Signer
from sqlalchemy import Boolean, and_, bindparam, case, exists, false, literal, not_, or_, select, true, update
from sqlalchemy.sql.elements import ColumnElement

from app.db.dialects import dialect_insert
from app.domain import links
from app.domain.status import ALL_STATUSES, Status
from app.domain.timeutil import utcnow
from app.errors import NotFound, ValidationError
from app.extensions import db
from app.models import Notification, NotificationChoice, NotificationDefault, Shipment, TrackingEvent
from app.models.notification_choice import CHANNELS, CHOICES, SENDER_CHANNELS
from app.observability.metrics import count_delivery
from app.services.staff.audit import CUSTOMER, record_audit

MAX_ROW_ID = 2**31 - 1  # INTEGER primary keys
TOKEN_SALT = "waybill.notification-choices"  # noqa: S105 - a salt (public by design), not a secret
CHANNEL_LABELS = {"email": _l("Email"), "sms": _l("SMS"), "sender_email": _l("Email"), "sender_sms": _l("SMS")}
CHOICE_LABELS = {
    "all": _l("All updates"),
    "delivery_day": _l("Only the delivery day (out for delivery, delivered, and any problem)"),
    "none": _l("None"),
}
# "Only the delivery day": the day itself, and whatever stops or ends the delivery.
DELIVERY_DAY_STATUSES: tuple[str, ...] = (
    Status.OUT_FOR_DELIVERY, Status.DELIVERED, Status.DELIVERY_ATTEMPTED, Status.ON_HOLD, Status.RTO_INITIATED,
    Status.RETURNED_TO_SENDER, Status.CANCELLED,
)
# What the sender hears of: the parcel is coming back, and it is back.
SENDER_STATUSES: tuple[str, ...] = (Status.RTO_INITIATED, Status.RETURNED_TO_SENDER)
# Rows a recipient's "stop" reaches: queued and not yet sent. A row being sent (`sending`) finishes.
UNSENT_STATES = ("pending", "dead")
SUPPRESSED_REASON = "Not sent: the recipient turned these messages off."


# --- the rules, as SQL --------------------------------------------------------------------------------------

def sms_statuses() -> list[str]:
    """The statuses that send an SMS by default (SMS_STATUSES), read when a statement runs."""
    return list(current_app.config["SMS_STATUSES"])


# Evaluated each time a statement holding it runs, so a statement built once (at import) follows the config.
_SMS_STATUSES = bindparam("sms_default_statuses", expanding=True, callable_=sms_statuses)
_DELIVERY_DAY = tuple(str(s) for s in DELIVERY_DAY_STATUSES)
_SENDER_STATUSES = tuple(str(s) for s in SENDER_STATUSES)
_BOOKED_SMS = bindparam("booked_sms_by_default", type_=Boolean,
                        callable_=lambda: Status.BOOKED.value in sms_statuses())


def _builtin_default(channel: str, status: ColumnElement) -> ColumnElement[bool]:
    if channel == "sms":
        return status.in_(_SMS_STATUSES)
    return true()


def notifies(channel: str, shipment_id: ColumnElement, status: ColumnElement, *,
             new_shipments: bool = False) -> ColumnElement[bool]:
    """SQL: does a message on `channel` about an event in `status` go to this shipment's recipient?

    The recipient's choice wins ("all", "delivery_day", "none"); without one, the admin's default for the
    status, else the built-in one. For shipments booked by the same statement (`new_shipments`) no choice can
    exist yet, so only the defaults are asked, for their first status, Booked (the booking statement is the
    busiest write: a smaller plan, prepared once).
    """
    admin_default = (select(NotificationDefault.notify)
                     .where(NotificationDefault.channel == channel, NotificationDefault.status == status)
                     .correlate_except(NotificationDefault).scalar_subquery())
    if new_shipments:
        # A booking's first status is Booked; its built-in default is a plain value (the busiest statement is
        # prepared once per connection, app.db.prepared, and cannot hold an IN list that follows the config).
        builtin = _BOOKED_SMS if channel == "sms" else true()
        return or_(admin_default.is_(True), and_(admin_default.is_(None), builtin))
    by_default = or_(admin_default.is_(True),
                     and_(admin_default.is_(None), _builtin_default(channel, status)))
    choice = (select(NotificationChoice.choice)
              .where(NotificationChoice.shipment_id == shipment_id, NotificationChoice.channel == channel)
              .correlate_except(NotificationChoice).scalar_subquery())
    return case(
        (choice == "all", true()),
        (choice == "none", false()),
        (choice == "delivery_day", status.in_(_DELIVERY_DAY)),
        else_=by_default,
    ) == true()


def notifies_sender(channel: str, shipment_id: ColumnElement, status: ColumnElement) -> ColumnElement[bool]:
    """SQL: does a notice on a sender's channel (SENDER_CHANNELS) about an event in `status` go to this shipment's
    sender? For SENDER_STATUSES, unless the sender turned the channel off (or chose updates that leave the status
    out) through the link in an earlier notice. Whether the sender gave that contact is the caller's to ask."""
    if channel not in SENDER_CHANNELS:
        raise ValueError(f"{channel!r} is not a sender's channel")
    return and_(status.in_(_SENDER_STATUSES), not_(turned_off(shipment_id, literal(channel), status)))


def turned_off(shipment_id: ColumnElement, channel: ColumnElement, status: ColumnElement) -> ColumnElement[bool]:
    """SQL: has the recipient since chosen not to get this message (for rows already queued)?"""
    return exists().correlate_except(NotificationChoice).where(
        NotificationChoice.shipment_id == shipment_id, NotificationChoice.channel == channel,
        or_(NotificationChoice.choice == "none",
            and_(NotificationChoice.choice == "delivery_day", status.not_in(_DELIVERY_DAY))),
    )


# --- the recipient's token ----------------------------------------------------------------------------------

# The token is "<shipment id><channel letter>.<HMAC>": short, so an SMS has room for its link. The sender's
# channels: "f" (email, "from") and "t" (text).
_CHANNEL_CODES = {"email": "e", "sms": "s", "sender_email": "f", "sender_sms": "t"}
_CODE_CHANNELS = {code: channel for channel, code in _CHANNEL_CODES.items()}
_TOKEN_VALUE = re.compile(r"([1-9][0-9]{0,9})([a-z])")
_BAD_LINK = _l("This link is not valid. Use the link from your latest message.")  # str() when raised


def _signer() -> Signer:
    return Signer(current_app.config["SECRET_KEY"], salt=TOKEN_SALT)


def choices_token(shipment_id: int, channel: str) -> str:
    """The signed token for one shipment's messages on one channel (no expiry)."""
    return _signer().sign(f"{shipment_id}{_CHANNEL_CODES[channel]}").decode()


def choices_url(shipment_id: int, channel: str) -> str:
    """The absolute URL of the choices page (and one-click unsubscribe) for a message's footer or header."""
    return links.choices_url(current_app.config["PUBLIC_BASE_URL"], choices_token(shipment_id, channel))


def read_choices_token(token: str) -> tuple[int, str]:
    """(shipment id, channel) of a token; NotFound for anything not signed by us (forged, cut, other salt)."""
    try:
        value = _signer().unsign(token.encode("ascii")).decode("ascii")
    except (BadData, UnicodeError, ValueError):
        raise NotFound(str(_BAD_LINK)) from None
    match = _TOKEN_VALUE.fullmatch(value)
    if match is None or match.group(2) not in _CODE_CHANNELS or int(match.group(1)) > MAX_ROW_ID:
        raise NotFound(str(_BAD_LINK))
    return int(match.group(1)), _CODE_CHANNELS[match.group(2)]


# --- the recipient's choices --------------------------------------------------------------------------------

@dataclass(frozen=True)
class RecipientChoice:
    """What the public choices page shows: the tracking ID, the channel and the current choice, nothing else."""

    tracking_id: str
    channel: str
    choice: str | None  # None: the defaults apply
    token: str


def choice_for_token(token: str) -> RecipientChoice:
    """The choice a token controls; NotFound for a bad token or a shipment that is gone."""
    shipment_id, channel = read_choices_token(token)
    tracking_id = db.session.scalar(select(Shipment.tracking_id).where(Shipment.id == shipment_id))
    if tracking_id is None:
        raise NotFound(str(_BAD_LINK))
    return RecipientChoice(tracking_id, channel, current_choice(shipment_id, channel), token)


def current_choice(shipment_id: int, channel: str) -> str | None:
    return db.session.scalar(select(NotificationChoice.choice).where(
        NotificationChoice.shipment_id == shipment_id, NotificationChoice.channel == channel))


def choose_by_token(token: str, choice: str) -> int:
    """Record the recipient's choice for the token's shipment and channel; returns how many queued messages it
    suppressed. ValidationError for a choice not offered."""
    if choice not in CHOICES:
        raise ValidationError(fields={"choice": gettext("Must be one of: %(values)s.", values=", ".join(CHOICES))})
    shipment_id, channel = read_choices_token(token)
    if db.session.scalar(select(Shipment.id).where(Shipment.id == shipment_id)) is None:
        raise NotFound(str(_BAD_LINK))
    return set_choice(shipment_id, channel, choice)


def unsubscribe_by_token(token: str) -> int:
    """One-click unsubscribe (RFC 8058): no further messages on the token's channel for its shipment."""
    return choose_by_token(token, "none")


def set_choice(shipment_id: int, channel: str, choice: str, actor: str = CUSTOMER) -> int:
    """Store one choice (insert or replace, race-free) and suppress the queued, unsent messages it now excludes,
    in the caller's transaction. Returns how many were suppressed."""
    values = {"shipment_id": shipment_id, "channel": channel, "choice": choice, "updated_at": utcnow()}
    statement = dialect_insert(NotificationChoice.__table__).values(values)
    db.session.execute(statement.on_conflict_do_update(
        index_elements=["shipment_id", "channel"],
        set_={"choice": statement.excluded.choice, "updated_at": statement.excluded.updated_at}))
    event_status = (select(TrackingEvent.status).where(TrackingEvent.id == Notification.event_id)
                    .correlate(Notification).scalar_subquery())
    suppressed = db.session.execute(
        update(Notification)
        .where(Notification.shipment_id == shipment_id, Notification.channel == channel,
               Notification.state.in_(UNSENT_STATES),
               turned_off(Notification.shipment_id, Notification.channel, event_status))
        .values(state="suppressed", lease_until=None, last_error=SUPPRESSED_REASON)
        .execution_options(synchronize_session=False)
    ).rowcount
    record_audit("preferences_changed", actor=actor, target_type="shipment", target_id=shipment_id,
                 details={"channel": channel, "choice": choice, "suppressed": suppressed})
    count_delivery(channel, "suppressed", suppressed)
    return suppressed


# --- what staff see -----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ShipmentPreferences:
    choices: dict[str, str | None]  # channel → the recipient's choice, None for the defaults
    suppressed: list[Notification]  # newest first


def shipment_preferences(shipment_id: int) -> ShipmentPreferences:
    """A shipment's choices on every channel and the messages not sent because of them."""
    chosen = {channel: choice for channel, choice in db.session.execute(
        select(NotificationChoice.channel, NotificationChoice.choice)
        .where(NotificationChoice.shipment_id == shipment_id))}
    suppressed = list(db.session.scalars(
        select(Notification).where(Notification.shipment_id == shipment_id, Notification.state == "suppressed")
        .order_by(Notification.created_at.desc(), Notification.id.desc())))
    return ShipmentPreferences({channel: chosen.get(channel) for channel in CHANNELS}, suppressed)


# --- the admin's defaults -----------------------------------------------------------------------------------

def channel_defaults() -> dict[str, dict[str, bool]]:
    """Channel → status → notifies without a recipient's choice (the admin's setting, else the built-in)."""
    stored = {(row.channel, row.status): row.notify for row in db.session.scalars(select(NotificationDefault))}
    builtin = {"email": set(ALL_STATUSES), "sms": set(sms_statuses())}
    return {channel: {status: stored.get((channel, status), status in builtin[channel]) for status in ALL_STATUSES}
            for channel in CHANNELS}


def set_channel_defaults(channel: str, statuses: list[str], actor: str) -> dict[str, bool]:
    """Set which statuses notify on `channel` by default (every status stored, so the built-in no longer
    applies); audited. ValidationError for an unknown channel or status."""
    if channel not in CHANNELS:
        raise ValidationError(fields={"channel": f"Must be one of: {', '.join(CHANNELS)}."})
    unknown = sorted(set(statuses) - set(ALL_STATUSES))
    if unknown:
        raise ValidationError(fields={"statuses": f"Unknown status {unknown[0][:40]!r}."})
    now, chosen = utcnow(), set(statuses)
    before = channel_defaults()[channel]
    for status in ALL_STATUSES:
        db.session.merge(NotificationDefault(channel=channel, status=status, notify=status in chosen,
                                             updated_at=now, updated_by=actor))
    db.session.flush()
    after = {status: status in chosen for status in ALL_STATUSES}
    record_audit("preferences_changed", actor=actor, target_type="notification_defaults", target_id=channel,
                 details={"on": sorted(s for s in ALL_STATUSES if after[s] and not before[s]),
                          "off": sorted(s for s in ALL_STATUSES if before[s] and not after[s])})
    return after
