"""Delivering webhook events to integrators' HTTPS endpoints: signing, the address check, and one POST.

Signing follows the scheme receivers already verify for Stripe: the header
`Waybill-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`, with one `v1` per active secret
(two while a rotated secret overlaps the new one). Receivers reject old timestamps, so a replay is useless.

Safety: the destination is resolved at send time and every address it resolves to must be public (no loopback,
private, link-local, multicast, reserved, shared or cloud-metadata address) unless WEBHOOK_ALLOW_PRIVATE is on
(tests and local development); the connection goes to the checked address, so a DNS answer that changes between
the check and the connect (DNS rebinding) cannot redirect it. Only `https://` in production. Redirects are not
followed. At most RESPONSE_KEEP bytes of the answer are read.
"""
from __future__ import annotations

import hashlib
import hmac
import http.client
import ipaddress
import socket
import ssl
import time
from collections.abc import Iterable
from dataclasses import dataclass

from app.notifier.sender import DeliveryFailed
from app.services.outbox.webhooks import address_refused, parse_destination

__all__ = ["DestinationRefused", "NotAccepted", "WebhookAnswer", "address_refused", "check_url", "post",
           "resolve_public", "sign", "verify"]

SIGNATURE_HEADER = "Waybill-Signature"
EVENT_ID_HEADER = "Waybill-Event-Id"
RESPONSE_KEEP = 1024


def sign(secrets: Iterable[str], body: bytes, timestamp: int | None = None) -> str:
    """The signature header's value for `body`, one v1 per secret (newest first)."""
    t = int(time.time() if timestamp is None else timestamp)
    signed = f"{t}.".encode() + body
    parts = [f"t={t}"] + [f"v1={hmac.new(s.encode(), signed, hashlib.sha256).hexdigest()}" for s in secrets]
    return ",".join(parts)


def verify(secret: str, header: str, body: bytes, tolerance: int = 300, now: int | None = None) -> bool:
    """What a receiver does (documented in the README): the timestamp is recent and one v1 matches."""
    fields = [part.split("=", 1) for part in header.split(",") if "=" in part]
    timestamps = [v for k, v in fields if k == "t"]
    if len(timestamps) != 1 or not timestamps[0].isdigit():
        return False
    t = int(timestamps[0])
    if abs((int(time.time()) if now is None else now) - t) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
    return any(k == "v1" and hmac.compare_digest(v, expected) for k, v in fields)


class DestinationRefused(DeliveryFailed):
    """The URL or the address it resolves to is not one Waybill sends to."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason, permanent=False)


def check_url(url: str, *, allow_private: bool) -> tuple[str, str, int, str]:
    """(scheme, host, port, path with query) of an acceptable webhook URL; DestinationRefused otherwise.
    The rules are the subscription's (app.services.outbox.webhooks.parse_destination), checked again at each send."""
    try:
        destination = parse_destination(url, allow_private=allow_private)
    except ValueError as exc:
        raise DestinationRefused(str(exc)) from None
    return destination.scheme, destination.host, destination.port, destination.path


def resolve_public(host: str, port: int, *, allow_private: bool) -> str:
    """One address `host` resolves to, checked: every answer must be public unless private ones are allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise DeliveryFailed(f"cannot resolve {host}", connection=True) from exc
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not addresses:
        raise DeliveryFailed(f"{host} has no address", connection=True)
    if not allow_private:
        for address in addresses:
            reason = address_refused(address)
            if reason:
                raise DestinationRefused(f"{host} resolves to {reason}")
    return str(addresses[0])


class _PinnedHTTPSConnection(http.client.HTTPSConnection):
    """HTTPS to a checked address, with the certificate checked against the URL's host name."""

    def __init__(self, host: str, address: str, port: int, timeout: float, context: ssl.SSLContext) -> None:
        super().__init__(host, port, timeout=timeout, context=context)
        self._address = address

    def connect(self) -> None:
        sock = socket.create_connection((self._address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)


class _PinnedHTTPConnection(http.client.HTTPConnection):
    def __init__(self, host: str, address: str, port: int, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self._address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self._address, self.port), self.timeout)


@dataclass(frozen=True)
class WebhookAnswer:
    status: int
    body: str  # the first RESPONSE_KEEP bytes, decoded leniently


def post(url: str, body: bytes, headers: dict[str, str], *, timeout: float, allow_private: bool,
         ca_file: str | None = None) -> WebhookAnswer:
    """POST once; raise DeliveryFailed (retryable) for anything but a 2xx answer."""
    scheme, host, port, path = check_url(url, allow_private=allow_private)
    address = resolve_public(host, port, allow_private=allow_private)
    if scheme == "https":
        context = ssl.create_default_context(cafile=ca_file)
        connection: http.client.HTTPConnection = _PinnedHTTPSConnection(host, address, port, timeout, context)
    else:
        connection = _PinnedHTTPConnection(host, address, port, timeout)
    try:
        connection.request("POST", path, body=body, headers={
            "Content-Type": "application/json", "User-Agent": "Waybill-Webhooks/1", **headers})
        response = connection.getresponse()
        answer = WebhookAnswer(response.status, response.read(RESPONSE_KEEP).decode("utf-8", "replace"))
    except TimeoutError as exc:
        raise DeliveryFailed(f"no answer within {timeout:g}s", connection=False) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise DeliveryFailed(f"connection failed: {type(exc).__name__}", connection=False) from exc
    finally:
        connection.close()
    if not 200 <= answer.status < 300:
        raise NotAccepted(answer)
    return answer


class NotAccepted(DeliveryFailed):
    """The receiver answered, with something other than 2xx (retryable); `answer` is what it said."""

    def __init__(self, answer: WebhookAnswer) -> None:
        super().__init__(f"answered {answer.status}" + (" (redirects are not followed)"
                                                       if 300 <= answer.status < 400 else ""))
        self.answer = answer
