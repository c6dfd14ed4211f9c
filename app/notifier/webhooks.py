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
from urllib.parse import urlsplit

from app.notifier.sender import DeliveryFailed

SIGNATURE_HEADER = "Waybill-Signature"
EVENT_ID_HEADER = "Waybill-Event-Id"
RESPONSE_KEEP = 1024
METADATA_ADDRESSES = frozenset({ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254"),
                                ipaddress.ip_address("100.100.100.200")})


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
    """(scheme, host, port, path with query) of an acceptable webhook URL; DestinationRefused otherwise."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise DestinationRefused("not a valid URL") from exc
    scheme = parts.scheme.lower()
    allowed = {"https", "http"} if allow_private else {"https"}
    if scheme not in allowed:
        raise DestinationRefused("only https:// URLs are allowed")
    if not parts.hostname or parts.username or parts.password:
        raise DestinationRefused("the URL needs a host and must not carry credentials")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, parts.hostname, port or (443 if scheme == "https" else 80), path


def address_refused(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address is not a public one (None if it is)."""
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
        raise DeliveryFailed(f"answered {answer.status}" + (" (redirects are not followed)"
                                                           if 300 <= answer.status < 400 else ""))
    return answer
