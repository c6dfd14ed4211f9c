"""SMS backends for the outbox's `sms` channel: console (the default), Amazon SNS and a plain HTTP gateway.

Each backend's `send(sms)` returns on success and raises `DeliveryFailed` otherwise, saying whether the message
was refused for good (`permanent`: a bad number, a 4xx that will not change) or may be retried (timeouts, 5xx,
throttling). No backend logs the text or the full number.
"""
from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from app.notifier.sender import DeliveryFailed

log = logging.getLogger(__name__)

# GSM 03.38: the basic set, and the extension table (each extension character costs two septets).
GSM7_BASIC = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENSION = set("^{}\\[~]|€\f")
TRANSIENT_HTTP = frozenset({408, 425, 429})


@dataclass(frozen=True)
class OutgoingSms:
    notification_id: int
    to: str  # E.164
    text: str


@dataclass(frozen=True)
class SmsEncoding:
    encoding: str  # "GSM-7" or "UCS-2"
    units: int  # septets (GSM-7) or UTF-16 code units (UCS-2)
    segments: int


def sms_encoding(text: str) -> SmsEncoding:
    """How a text travels: GSM-7 when every character is in the GSM alphabet (160 per single message, 153 per
    part of a long one), else UCS-2 (70, and 67 per part)."""
    if all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text):
        units = sum(2 if ch in GSM7_EXTENSION else 1 for ch in text)
        return SmsEncoding("GSM-7", units, 1 if units <= 160 else -(-units // 153))
    units = len(text.encode("utf-16-le")) // 2
    return SmsEncoding("UCS-2", units, 1 if units <= 70 else -(-units // 67))


def sms_fits(text: str) -> bool:
    """Our limit for one notification: one GSM-7 segment (160 septets), or two UCS-2 segments (Hindi)."""
    encoding = sms_encoding(text)
    return encoding.segments <= (1 if encoding.encoding == "GSM-7" else 2)


def fitting_text(texts: tuple[str, ...] | list[str]) -> str:
    """The first of `texts` (most complete first) within the limit, else the last (the shortest we have)."""
    return next((text for text in texts if sms_fits(text)), texts[-1])


def mask_number(number: str) -> str:
    """"+919876543210" → "+91••••••3210"."""
    return f"{number[:3]}••••••{number[-4:]}" if len(number) > 7 else "••••"


class SmsBackend(Protocol):
    def send(self, sms: OutgoingSms) -> None: ...
    def close(self) -> None: ...


class ConsoleSmsBackend:
    """Logs that a message would be sent (id, masked number, size), never its text."""

    def send(self, sms: OutgoingSms) -> None:
        encoding = sms_encoding(sms.text)
        log.info("SMS #%s to %s (%s, %d segment%s) [console backend: not sent]", sms.notification_id,
                 mask_number(sms.to), encoding.encoding, encoding.segments, "" if encoding.segments == 1 else "s")

    def close(self) -> None:
        pass


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # a gateway that redirects is answered as what it said (a 3xx): not followed


class HttpSmsBackend:
    """A JSON POST `{"to", "text", "id"}` to SMS_HTTP_URL with SMS_HTTP_AUTHORIZATION; any 2xx is success."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.url = config["SMS_HTTP_URL"]
        if not self.url:
            raise DeliveryFailed("SMS_BACKEND=http needs SMS_HTTP_URL", permanent=False, connection=True)
        self.authorization = config.get("SMS_HTTP_AUTHORIZATION")
        self.timeout = float(config.get("SMS_TIMEOUT", 10.0))
        self.opener = urllib.request.build_opener(_NoRedirects)

    def send(self, sms: OutgoingSms) -> None:
        body = json.dumps({"to": sms.to, "text": sms.text, "id": str(sms.notification_id)}).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "Waybill-SMS/1"}
        if self.authorization:
            headers["Authorization"] = self.authorization
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")  # noqa: S310
        try:
            with self.opener.open(request, timeout=self.timeout) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise DeliveryFailed(f"SMS gateway unreachable: {reason}", connection=True) from exc
        if 200 <= status < 300:
            return
        permanent = 400 <= status < 500 and status not in TRANSIENT_HTTP
        raise DeliveryFailed(f"SMS gateway answered {status}", permanent=permanent)

    def close(self) -> None:
        pass


class SnsSmsBackend:
    """Amazon SNS `Publish` to a phone number, as a transactional SMS with the configured sender ID."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        import boto3
        from botocore.config import Config as BotoConfig

        self.client = boto3.client(
            "sns", region_name=config["AWS_REGION"], endpoint_url=config.get("SNS_ENDPOINT_URL"),
            config=BotoConfig(connect_timeout=5, read_timeout=float(config.get("SMS_TIMEOUT", 10.0)),
                              retries={"max_attempts": 1}))
        self.attributes = {"AWS.SNS.SMS.SMSType": {"DataType": "String", "StringValue": "Transactional"}}
        if config.get("SMS_SENDER_ID"):
            self.attributes["AWS.SNS.SMS.SenderID"] = {"DataType": "String", "StringValue": config["SMS_SENDER_ID"]}

    def send(self, sms: OutgoingSms) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.publish(PhoneNumber=sms.to, Message=sms.text, MessageAttributes=self.attributes)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            permanent = code in {"InvalidParameter", "InvalidParameterValue", "OptedOut", "AuthorizationError"}
            raise DeliveryFailed(f"SNS refused the SMS: {code or 'error'}", permanent=permanent) from exc
        except BotoCoreError as exc:
            raise DeliveryFailed(f"SNS unreachable: {type(exc).__name__}", connection=True) from exc

    def close(self) -> None:
        pass


SMS_BACKENDS = {"console": lambda config: ConsoleSmsBackend(), "http": HttpSmsBackend, "sns": SnsSmsBackend}


def open_sms_backend(config: Mapping[str, Any]) -> SmsBackend:
    name = str(config["SMS_BACKEND"]).lower()
    if name not in SMS_BACKENDS:
        raise DeliveryFailed(f"SMS_BACKEND must be one of {', '.join(SMS_BACKENDS)}, not {name!r}", connection=True)
    return SMS_BACKENDS[name](config)
