"""The outbox's channels: how the worker sends a claimed row of each channel, and how often it retries.

One outbox, one worker (DESIGN rule 7): the worker claims rows of every channel together and hands each row to its
channel's sender. A channel is registered here once, as data:

- `open(config)` opens the channel's sender for one pass of the worker (an SMTP connection, an HTTP client…);
  it raises `DeliveryFailed` when the configuration cannot work, which fails that channel's rows of the batch.
- `retry_policy(config)` says how many attempts a row gets and how long to wait between them.
- `mask(recipient)` is the recipient as it may appear in a log line (never a full address or number).

A sender's `send(claimed, facts)` returns when the row was delivered and raises `DeliveryFailed` otherwise
(`permanent` for a refusal that will not change, `connection` when the far end is unreachable, so the rest of
the batch for that channel fails the same way without being tried).
"""
from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from app.models.webhook import WebhookSubscription
from app.notifier import claims, webhooks
from app.notifier.sender import DeliveryFailed, MailBackend, OutgoingEmail, build_message, mask_email, open_backend
from app.notifier.sms import OutgoingSms, SmsBackend, fitting_text, mask_number, open_sms_backend
from app.services.field.delivery_codes import CODE_EMAIL, CODE_SMS
from app.services.ndr.reports import LAST_CHANCE_EMAIL, LAST_CHANCE_SMS
from app.services.operations.alert_digest import DIGEST_CHANNEL
from app.services.outbox import messages
from app.services.outbox import webhooks as webhook_service


class ChannelSender(Protocol):
    def send(self, claimed: claims.ClaimedMessage, facts: messages.MessageFacts) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class Channel:
    name: str
    open: Callable[[Mapping[str, Any]], ChannelSender]
    retry_policy: Callable[[Mapping[str, Any]], claims.RetryPolicy]
    mask: Callable[[str], str]


class EmailSender:
    """Renders a claimed email row now and sends it through the configured mail backend (one connection a pass)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.backend: MailBackend = open_backend(config)

    def send(self, claimed: claims.ClaimedMessage, facts: messages.MessageFacts) -> None:
        email = outgoing_email(claimed, facts)
        self.backend.send(email, build_message(email, self.config))

    def close(self) -> None:
        self.backend.close()


def outgoing_email(claimed: claims.ClaimedMessage, facts: messages.MessageFacts) -> OutgoingEmail:
    """The email for a claimed row, rendered now from the shipment and event it names."""
    rendered = messages.render(claimed, facts)
    return OutgoingEmail(notification_id=claimed.id, recipient=claimed.recipient, subject=rendered.subject,
                         body_text=rendered.body_text, body_html=rendered.body_html, created_at=claimed.created_at,
                         unsubscribe_url=rendered.unsubscribe_url)


def email_retry_policy(config: Mapping[str, Any]) -> claims.RetryPolicy:
    return claims.RetryPolicy(max(int(config["MAIL_MAX_ATTEMPTS"]), 1), float(config["MAIL_RETRY_BACKOFF"]),
                              float(config["MAIL_RETRY_BACKOFF_MAX"]))


class SmsSender:
    """Renders a claimed SMS row now (the longest text that fits the segment limit) and sends it through the
    configured SMS backend (SMS_BACKEND)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.backend: SmsBackend = open_sms_backend(config)

    def send(self, claimed: claims.ClaimedMessage, facts: messages.MessageFacts) -> None:
        self.backend.send(outgoing_sms(claimed, facts))

    def close(self) -> None:
        self.backend.close()


def outgoing_sms(claimed: claims.ClaimedMessage, facts: messages.MessageFacts) -> OutgoingSms:
    """The SMS for a claimed row, rendered now; its `id` is the outbox row's (a gateway may deduplicate on it)."""
    rendered = messages.render(claimed, facts)
    return OutgoingSms(notification_id=claimed.id, to=claimed.recipient, text=fitting_text(rendered.texts))


def sms_retry_policy(config: Mapping[str, Any]) -> claims.RetryPolicy:
    return claims.RetryPolicy(max(int(config["SMS_MAX_ATTEMPTS"]), 1), float(config["SMS_RETRY_BACKOFF"]),
                              float(config["SMS_RETRY_BACKOFF_MAX"]))


class WebhookSender:
    """POSTs a claimed webhook row to its subscription's URL, signed with the subscription's secret(s), and logs
    the attempt (status, time taken, the first 1 KB of the answer) in the worker's transaction.

    Every failure to reach one receiver is that row's own (never `connection`, which would fail other
    subscriptions' rows of the batch too). A deleted or disabled subscription's row is dead at once.
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config

    def send(self, claimed: claims.ClaimedMessage, facts: messages.MessageFacts) -> None:
        subscription = webhook_service.subscription_for(claimed.recipient)
        if subscription is None:
            raise DeliveryFailed(webhook_service.DELETED_REASON, permanent=True)
        if not subscription.active:
            raise DeliveryFailed("The webhook subscription is disabled.", permanent=True)
        rendered = messages.render(claimed, facts)
        try:
            secrets = webhook_service.signing_secrets(subscription)
        except LookupError as exc:
            raise DeliveryFailed(str(exc)) from None
        headers = {webhooks.EVENT_ID_HEADER: rendered.event_id, "Waybill-Event-Type": rendered.event_type,
                   webhooks.SIGNATURE_HEADER: webhooks.sign(secrets, rendered.body)}
        started = time.monotonic()
        try:
            answer = webhooks.post(subscription.url, rendered.body, headers,
                                   timeout=float(self.config["WEBHOOK_TIMEOUT"]),
                                   allow_private=bool(self.config["WEBHOOK_ALLOW_PRIVATE"]),
                                   ca_file=self.config.get("WEBHOOK_CA_FILE"))
        except webhooks.NotAccepted as exc:
            self._record(subscription, claimed, started, delivered=False, status_code=exc.answer.status,
                         response_body=exc.answer.body, error=exc.reason)
            raise
        except DeliveryFailed as exc:
            self._record(subscription, claimed, started, delivered=False, error=exc.reason)
            raise DeliveryFailed(exc.reason) from exc  # this receiver only, and worth another try
        self._record(subscription, claimed, started, delivered=True, status_code=answer.status,
                     response_body=answer.body)

    @staticmethod
    def _record(subscription: WebhookSubscription, claimed: claims.ClaimedMessage, started: float,
                **outcome: Any) -> None:
        """Log the attempt. A subscription deleted while the delivery was in flight ends it quietly: delivered,
        the row is sent; not delivered, it is dead like the deleted subscription's waiting deliveries."""
        try:
            webhook_service.record_attempt(subscription, claimed.id, claimed.attempts,
                                           duration_ms=round((time.monotonic() - started) * 1000), **outcome)
        except webhook_service.SubscriptionGone:
            if not outcome["delivered"]:
                raise DeliveryFailed(webhook_service.DELETED_REASON, permanent=True) from None

    def close(self) -> None:
        pass


def webhook_retry_policy(config: Mapping[str, Any]) -> claims.RetryPolicy:
    return claims.RetryPolicy(max(int(config["WEBHOOK_MAX_ATTEMPTS"]), 1), float(config["WEBHOOK_RETRY_BACKOFF"]),
                              float(config["WEBHOOK_RETRY_BACKOFF_MAX"]), jitter=float(config["WEBHOOK_RETRY_JITTER"]))


CHANNELS: dict[str, Channel] = {
    "email": Channel("email", open=EmailSender, retry_policy=email_retry_policy, mask=mask_email),
    "sms": Channel("sms", open=SmsSender, retry_policy=sms_retry_policy, mask=mask_number),
    "webhook": Channel("webhook", open=WebhookSender, retry_policy=webhook_retry_policy, mask=str),
    # Alerts to the admins (ADMIN_ALERT_EMAILS): plain emails, rendered by their own function.
    "admin_email": Channel("admin_email", open=EmailSender, retry_policy=email_retry_policy, mask=mask_email),
    # The digest of operational alerts to the same addresses (app.services.operations.alert_digest).
    DIGEST_CHANNEL: Channel(DIGEST_CHANNEL, open=EmailSender, retry_policy=email_retry_policy, mask=mask_email),
    # The sender's notices of the return leg: emails and SMS like the recipient's, on channels of their own so that
    # each person's choices stay theirs (app.services.outbox.preferences).
    "sender_email": Channel("sender_email", open=EmailSender, retry_policy=email_retry_policy, mask=mask_email),
    "sender_sms": Channel("sender_sms", open=SmsSender, retry_policy=sms_retry_policy, mask=mask_number),
    # The recipient's delivery code (app.services.field.delivery_codes): sent whatever they chose for status updates.
    CODE_EMAIL: Channel(CODE_EMAIL, open=EmailSender, retry_policy=email_retry_policy, mask=mask_email),
    CODE_SMS: Channel(CODE_SMS, open=SmsSender, retry_policy=sms_retry_policy, mask=mask_number),
    # A failed delivery (app.services.ndr): the recipient's last chance before the return to origin, and the
    # webhooks of its report, opened and resolved (each event type on a channel of its own: see
    # app.services.outbox.webhooks.NDR_CHANNELS).
    LAST_CHANCE_EMAIL: Channel(LAST_CHANCE_EMAIL, open=EmailSender, retry_policy=email_retry_policy, mask=mask_email),
    LAST_CHANCE_SMS: Channel(LAST_CHANCE_SMS, open=SmsSender, retry_policy=sms_retry_policy, mask=mask_number),
    **{name: Channel(name, open=WebhookSender, retry_policy=webhook_retry_policy, mask=str)
       for name in webhook_service.NDR_CHANNELS.values()},
}


def channel(name: str) -> Channel:
    """The registered channel `name`; LookupError for a channel nobody sends (the row fails, visibly)."""
    try:
        return CHANNELS[name]
    except KeyError:
        raise LookupError(f"no sender for channel {name!r}") from None


def retry_policies(config: Mapping[str, Any]) -> dict[str, claims.RetryPolicy]:
    """Every channel's retry policy under `config`."""
    return {name: registered.retry_policy(config) for name, registered in CHANNELS.items()}


def max_attempts(config: Mapping[str, Any]) -> dict[str, int]:
    """Every channel's allowed attempts under `config` (what the claim query needs to know)."""
    return {name: policy.max_attempts for name, policy in retry_policies(config).items()}
