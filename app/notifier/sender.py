"""Turning an outbox row into an email and handing it to a mail backend (SMTP or the console).

A backend is opened once per batch and reuses one SMTP connection for every message in it. Errors come out as
`DeliveryFailed`, which says whether the message itself was refused for good (`permanent`, 5xx on RCPT or DATA)
and whether the connection is unusable (`connection`, so the rest of the batch fails the same way without
waiting for another timeout each).
"""
from __future__ import annotations

import binascii
import logging
import re
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.header import Header
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import format_datetime, parseaddr
from typing import Any, Protocol

from app.domain.timeutil import as_utc, utcnow

log = logging.getLogger(__name__)

NOTIFICATION_ID_HEADER = "X-Waybill-Notification-Id"
_EMAIL_ADDRESS = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")


@dataclass(frozen=True)
class OutgoingEmail:
    """What the sender needs of an outbox row (a claimed row, detached from any session)."""

    notification_id: int
    recipient: str
    subject: str
    body_text: str
    body_html: str | None
    created_at: datetime
    unsubscribe_url: str | None = None  # the recipient's choices page, which also takes the one-click POST


class _ConnectionDropped(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class DeliveryFailed(Exception):
    def __init__(self, reason: str, *, permanent: bool = False, connection: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.connection = connection


def mask_email(address: str) -> str:
    """"vikram@example.com" → "v***@example.com": enough to tell messages apart in a log, not to write to."""
    local, _, domain = address.rpartition("@")
    if not local:
        return "***"
    return f"{local[0]}***@{domain}"


def scrub_addresses(text: str) -> str:
    """The same text with every email address in it masked (server replies often quote the recipient)."""
    return _EMAIL_ADDRESS.sub(lambda m: f"{m.group(1)}***@{m.group(2)}", text)


def message_id(email: OutgoingEmail, sender: str) -> str:
    """A Message-ID unique to the notification and the same on every attempt, so that a copy re-sent after a
    crash can be recognised as the same message by mail clients."""
    domain = parseaddr(sender)[1].rpartition("@")[2] or "waybill.local"
    stamp = as_utc(email.created_at).strftime("%Y%m%d%H%M%S%f")
    return f"<waybill.{email.notification_id}.{stamp}@{domain}>"


def _header(value: str) -> str | Header:
    """ASCII headers as they are; anything else RFC 2047-encoded."""
    return value if value.isascii() else Header(value, "utf-8")


def build_message(email: OutgoingEmail, config: Mapping[str, Any], now: datetime | None = None) -> Message:
    """The MIME message: text part, HTML alternative, and the headers (Date is the time of sending).

    Built with the compat32 classes: the `EmailMessage` API parses every header it is given through the header
    registry, which cost more CPU than everything else a booking does; these headers are ours and need no parsing.
    """
    sender = config["MAIL_DEFAULT_SENDER"]
    text = _text_part(email.body_text, "plain")
    if email.body_html:
        message = MIMEMultipart("alternative")
        message.attach(text)
        message.attach(_text_part(email.body_html, "html"))
    else:
        message = text
    message["From"] = _header(sender)
    message["To"] = email.recipient
    message["Subject"] = _header(email.subject)
    message["Date"] = format_datetime(now or utcnow())
    message["Message-ID"] = message_id(email, sender)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: auto-replies should not answer it
    message[NOTIFICATION_ID_HEADER] = str(email.notification_id)
    if email.unsubscribe_url:
        # RFC 8058: mail clients offer "unsubscribe" and POST "List-Unsubscribe=One-Click" to the URL.
        message["List-Unsubscribe"] = f"<{email.unsubscribe_url}>"
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    return message


def _text_part(body: str, subtype: str) -> Message:
    """A text/<subtype> part in UTF-8, quoted-printable (readable source, safe line lengths), encoded by binascii's
    C encoder: email.quoprimime's pure-Python one, which MIMEText uses, cost a fifth of an email's CPU."""
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part["Content-Transfer-Encoding"] = "quoted-printable"
    part.set_payload(binascii.b2a_qp(body.encode("utf-8"), istext=True).decode("ascii"))
    return part


class MailBackend(Protocol):
    def send(self, email: OutgoingEmail, message: Message) -> None: ...

    def close(self) -> None: ...


class ConsoleBackend:
    """For laptops: logs that a message would go out (no address in full, no body) and counts it as sent."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config

    def send(self, email: OutgoingEmail, message: Message) -> None:
        log.info("Email #%s to %s, subject %r, Message-ID %s (MAIL_BACKEND=console: logged here, not sent)",
                 email.notification_id, mask_email(email.recipient), email.subject, message["Message-ID"])

    def close(self) -> None:
        pass


class SMTPBackend:
    """smtplib over SMTP_SSL (MAIL_USE_SSL) or STARTTLS (MAIL_USE_TLS), with verified certificates.

    The connection is opened on the first send and reused; a connection the server dropped after earlier
    messages is reopened once (servers cap messages per connection).
    """

    def __init__(self, config: Mapping[str, Any]) -> None:
        if config["MAIL_USE_SSL"] and config["MAIL_USE_TLS"]:
            raise DeliveryFailed("MAIL_USE_SSL and MAIL_USE_TLS are both set; choose one.", connection=True)
        self.config = config
        self.smtp: smtplib.SMTP | None = None
        self.sent_on_connection = 0

    def _tls_context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.config.get("MAIL_CA_FILE") or None)

    def _open(self) -> smtplib.SMTP:
        host, port, timeout = self.config["MAIL_SERVER"], self.config["MAIL_PORT"], self.config["MAIL_TIMEOUT"]
        smtp: smtplib.SMTP | None = None
        try:
            if self.config["MAIL_USE_SSL"]:
                smtp = smtplib.SMTP_SSL(host, port, timeout=timeout, context=self._tls_context())
            else:
                smtp = smtplib.SMTP(host, port, timeout=timeout)
                if self.config["MAIL_USE_TLS"]:
                    smtp.starttls(context=self._tls_context())  # raises unless the server offers it
            if self.config.get("MAIL_USERNAME"):
                smtp.login(self.config["MAIL_USERNAME"], self.config.get("MAIL_PASSWORD") or "")
        except (smtplib.SMTPException, OSError) as exc:
            if smtp is not None:
                _close_quietly(smtp, polite=False)
            raise DeliveryFailed(f"Could not connect to {host}:{port}: {_describe(exc)}", connection=True) from exc
        self.sent_on_connection = 0
        return smtp

    def send(self, email: OutgoingEmail, message: Message) -> None:
        reused = self.smtp is not None and self.sent_on_connection > 0
        if self.smtp is None:
            self.smtp = self._open()
        try:
            self._send_once(message)
        except _ConnectionDropped as exc:
            if not reused:
                raise DeliveryFailed(exc.reason, connection=True) from None
            # A server's per-connection message limit or idle timeout: one fresh connection, then give up.
            self.smtp = self._open()
            try:
                self._send_once(message)
            except _ConnectionDropped as again:
                raise DeliveryFailed(again.reason, connection=True) from None
        self.sent_on_connection += 1

    def _send_once(self, message: Message) -> None:
        assert self.smtp is not None
        try:
            self.smtp.send_message(message)
        except (smtplib.SMTPServerDisconnected, ConnectionResetError, BrokenPipeError) as exc:
            self._drop()
            raise _ConnectionDropped(f"The SMTP server closed the connection: {_describe(exc)}") from exc
        except smtplib.SMTPRecipientsRefused as exc:
            codes = [code for code, _reply in exc.recipients.values()]
            raise DeliveryFailed(f"Recipient refused: {_describe(exc)}",
                                 permanent=all(code >= 500 for code in codes)) from exc
        except smtplib.SMTPSenderRefused as exc:
            # A refused sender is our configuration, not this message: worth retrying once it is fixed.
            raise DeliveryFailed(f"Sender refused: {_describe(exc)}") from exc
        except smtplib.SMTPDataError as exc:
            raise DeliveryFailed(f"Message refused: {_describe(exc)}", permanent=exc.smtp_code >= 500) from exc
        except (smtplib.SMTPException, OSError) as exc:  # a timeout, a protocol error: the connection is unusable
            self._drop()
            raise DeliveryFailed(f"Sending failed: {_describe(exc)}", connection=True) from exc

    def _drop(self) -> None:
        if self.smtp is not None:
            _close_quietly(self.smtp, polite=False)
        self.smtp = None

    def close(self) -> None:
        if self.smtp is not None:
            _close_quietly(self.smtp)
        self.smtp = None


def _close_quietly(smtp: smtplib.SMTP, polite: bool = True) -> None:
    try:
        if polite:
            smtp.quit()
        else:
            smtp.close()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{code} {_reply_text(reply)}" for code, reply in exc.recipients.values())
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_reply_text(exc.smtp_error)}"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


def _reply_text(reply: bytes | str) -> str:
    return (reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)).replace("\n", " ")


BACKENDS: dict[str, type] = {"smtp": SMTPBackend, "console": ConsoleBackend}


def open_backend(config: Mapping[str, Any]) -> MailBackend:
    """The backend named by MAIL_BACKEND (opened lazily: nothing connects before the first send)."""
    name = str(config.get("MAIL_BACKEND") or "console").lower()
    if name not in BACKENDS:
        raise DeliveryFailed(f"MAIL_BACKEND must be one of {', '.join(sorted(BACKENDS))}, not {name!r}.",
                             connection=True)
    return BACKENDS[name](config)
