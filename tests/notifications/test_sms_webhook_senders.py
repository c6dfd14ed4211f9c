"""The SMS backends (console, a real HTTP gateway receiver, SNS on a local AWS-compatible server) and the webhook
sender (signatures, the address check, one POST to a real receiver over HTTP and HTTPS)."""
from __future__ import annotations

import http.server
import ipaddress
import json
import logging
import ssl
import threading
import time

import pytest

from app.notifier.sender import DeliveryFailed
from app.notifier.sms import OutgoingSms, mask_number, open_sms_backend, sms_encoding
from app.notifier.webhooks import (
    DestinationRefused,
    address_refused,
    check_url,
    post,
    resolve_public,
    sign,
    verify,
)
from tests.conftest import SHUTDOWN_POLL_SECONDS
from tests.notifications.conftest import free_port


class Receiver:
    """A small HTTP server on 127.0.0.1 that records requests and answers with a scripted status."""

    def __init__(self, certificate=None) -> None:
        self.requests: list[dict] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        self.headers_out: dict[str, str] = {}
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length", 0))
                receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                          "body": self.rfile.read(length)})
                time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                try:
                    self.send_response(status)
                    for name, value in receiver.headers_out.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", "2000")
                    self.end_headers()
                    self.wfile.write(b"x" * 2000)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the sender gave up waiting (the timeout tests), as it should

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        if certificate is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*map(str, certificate))
            self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(SHUTDOWN_POLL_SECONDS,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


SMS = OutgoingSms(notification_id=41, to="+919876543210", text="Waybill: 3EE0AFAD is Out for Delivery. "
                                                                   "Track: https://wb.example/t/3EE0AFAD")


# --- SMS -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, encoding, segments", [
    ("a" * 160, "GSM-7", 1), ("a" * 161, "GSM-7", 2), ("a" * 306, "GSM-7", 2), ("a" * 307, "GSM-7", 3),
    ("€" * 80, "GSM-7", 1), ("€" * 81, "GSM-7", 2),
    ("आपका पार्सल" + "क" * 59, "UCS-2", 1), ("क" * 71, "UCS-2", 2), ("क" * 134, "UCS-2", 2),
])
def test_sms_encoding_and_segments(text, encoding, segments):
    result = sms_encoding(text)
    assert (result.encoding, result.segments) == (encoding, segments)


def test_the_console_backend_logs_no_text_and_no_full_number(caplog):
    with caplog.at_level(logging.INFO, logger="app.notifier.sms"):
        open_sms_backend({"SMS_BACKEND": "console"}).send(SMS)
    assert "SMS #41 to +91••••••3210 (GSM-7, 1 segment)" in caplog.text
    assert "9876543210" not in caplog.text and "Out for Delivery" not in caplog.text
    assert mask_number("+919876543210") == "+91••••••3210"


def test_the_http_backend_posts_json_with_the_authorization_header(receiver):
    backend = open_sms_backend({"SMS_BACKEND": "http", "SMS_HTTP_URL": f"http://127.0.0.1:{receiver.port}/sms",
                                "SMS_HTTP_AUTHORIZATION": "Bearer gateway-token", "SMS_TIMEOUT": 2})
    backend.send(SMS)
    [request] = receiver.requests
    assert request["path"] == "/sms"
    assert request["headers"]["Authorization"] == "Bearer gateway-token"
    assert json.loads(request["body"]) == {"to": "+919876543210", "text": SMS.text, "id": "41"}


@pytest.mark.parametrize("status, permanent", [(500, False), (503, False), (429, False), (408, False),
                                               (400, True), (401, True), (302, False)])
def test_the_http_backend_tells_retryable_from_permanent_refusals(receiver, status, permanent):
    receiver.statuses = [status]
    receiver.headers_out = {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"}
    backend = open_sms_backend({"SMS_BACKEND": "http", "SMS_HTTP_URL": f"http://127.0.0.1:{receiver.port}/sms",
                                "SMS_TIMEOUT": 2})
    with pytest.raises(DeliveryFailed) as failed:
        backend.send(SMS)
    assert failed.value.permanent is permanent
    assert str(status) in failed.value.reason
    assert [r["path"] for r in receiver.requests] == ["/sms"]  # a redirect is never followed


def test_the_http_backend_when_the_gateway_is_down_or_slow(receiver):
    down = open_sms_backend({"SMS_BACKEND": "http", "SMS_HTTP_URL": f"http://127.0.0.1:{free_port()}/",
                             "SMS_TIMEOUT": 1})
    with pytest.raises(DeliveryFailed) as failed:
        down.send(SMS)
    assert failed.value.connection and not failed.value.permanent
    receiver.delay = 1.5
    slow = open_sms_backend({"SMS_BACKEND": "http", "SMS_HTTP_URL": f"http://127.0.0.1:{receiver.port}/",
                             "SMS_TIMEOUT": 0.5})
    with pytest.raises(DeliveryFailed) as failed:
        slow.send(SMS)
    assert not failed.value.permanent


@pytest.fixture(scope="module")
def aws_endpoint():
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


def test_the_sns_backend_publishes_a_transactional_sms(aws_endpoint, monkeypatch):
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.sns.models import sns_backends

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    backend = open_sms_backend({"SMS_BACKEND": "sns", "AWS_REGION": "ap-south-1", "SNS_ENDPOINT_URL": aws_endpoint,
                                "SMS_SENDER_ID": "WAYBIL", "SMS_TIMEOUT": 5})
    backend.send(SMS)
    sent = list(sns_backends[DEFAULT_ACCOUNT_ID]["ap-south-1"].sms_messages.values())
    assert ("+919876543210", SMS.text) in [(number, text) for number, text in sent]
    with pytest.raises(DeliveryFailed) as failed:
        backend.send(OutgoingSms(42, "not-a-number", "x"))
    assert failed.value.permanent


def test_the_sns_backend_when_aws_is_unreachable(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    backend = open_sms_backend({"SMS_BACKEND": "sns", "AWS_REGION": "ap-south-1", "SMS_TIMEOUT": 1,
                                "SNS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(DeliveryFailed) as failed:
        backend.send(SMS)
    assert failed.value.connection and not failed.value.permanent


def test_an_unknown_sms_backend_is_refused():
    with pytest.raises(DeliveryFailed):
        open_sms_backend({"SMS_BACKEND": "pigeon"})


# --- webhooks --------------------------------------------------------------------------------------------------

BODY = b'{"type":"shipment.status_changed","data":{"tracking_id":"3EE0AFAD"}}'


def test_signatures_verify_and_fail_on_tampering_age_and_wrong_secret():
    header = sign(["whsec_new"], BODY, timestamp=1_800_000_000)
    assert header.startswith("t=1800000000,v1=")
    assert verify("whsec_new", header, BODY, now=1_800_000_010)
    assert not verify("whsec_new", header, BODY + b" ", now=1_800_000_010)
    assert not verify("whsec_other", header, BODY, now=1_800_000_010)
    assert not verify("whsec_new", header, BODY, now=1_800_000_000 + 301)
    assert not verify("whsec_new", "v1=abc", BODY)


def test_during_a_rotation_both_secrets_verify():
    header = sign(["whsec_new", "whsec_old"], BODY, timestamp=1_800_000_000)
    assert header.count("v1=") == 2
    assert verify("whsec_new", header, BODY, now=1_800_000_000)
    assert verify("whsec_old", header, BODY, now=1_800_000_000)


@pytest.mark.parametrize("address", ["127.0.0.1", "10.1.2.3", "172.16.0.1", "192.168.1.1", "169.254.169.254",
                                     "169.254.10.10", "::1", "::ffff:127.0.0.1", "fd00:ec2::254", "fe80::1",
                                     "100.64.0.1", "0.0.0.0", "224.0.0.1", "240.0.0.1"])  # noqa: S104
def test_addresses_that_are_not_public_are_refused(address):
    assert address_refused(ipaddress.ip_address(address)) is not None


@pytest.mark.parametrize("address", ["93.184.216.34", "2606:2800:220:1:248:1893:25c8:1946"])
def test_public_addresses_pass(address):
    assert address_refused(ipaddress.ip_address(address)) is None


@pytest.mark.parametrize("url", ["http://hooks.example.com/x", "ftp://hooks.example.com/", "https://user:pw@h.com/",
                                 "https:///nohost", "https://h.com:99999/", "javascript:alert(1)"])
def test_urls_that_are_not_plain_https_are_refused(url):
    with pytest.raises(DestinationRefused):
        check_url(url, allow_private=False)


def test_names_that_resolve_to_loopback_are_refused_at_send_time(receiver):
    with pytest.raises(DestinationRefused):
        resolve_public("localhost", 443, allow_private=False)
    with pytest.raises(DestinationRefused):
        post(f"http://localhost:{receiver.port}/hook", BODY, {}, timeout=2, allow_private=False)
    assert receiver.requests == []


def test_a_post_reaches_a_real_receiver_signed_and_keeps_1kb_of_the_answer(receiver):
    header = sign(["whsec_test"], BODY)
    answer = post(f"http://127.0.0.1:{receiver.port}/hook?shop=1", BODY,
                  {"Waybill-Signature": header, "Waybill-Event-Id": "evt_1"}, timeout=2, allow_private=True)
    assert answer.status == 200 and len(answer.body) == 1024
    [request] = receiver.requests
    assert request["path"] == "/hook?shop=1" and request["body"] == BODY
    assert request["headers"]["Waybill-Event-Id"] == "evt_1"
    assert verify("whsec_test", request["headers"]["Waybill-Signature"], request["body"])


@pytest.mark.parametrize("status", [500, 404, 301])
def test_a_non_2xx_answer_is_a_retryable_failure_and_redirects_are_not_followed(receiver, status):
    receiver.statuses = [status]
    receiver.headers_out = {"Location": f"http://127.0.0.1:{receiver.port}/elsewhere"}
    with pytest.raises(DeliveryFailed) as failed:
        post(f"http://127.0.0.1:{receiver.port}/hook", BODY, {}, timeout=2, allow_private=True)
    assert not failed.value.permanent and str(status) in failed.value.reason
    assert len(receiver.requests) == 1


def test_timeouts_and_refused_connections_are_retryable_failures(receiver):
    receiver.delay = 1.5
    with pytest.raises(DeliveryFailed):
        post(f"http://127.0.0.1:{receiver.port}/hook", BODY, {}, timeout=0.5, allow_private=True)
    with pytest.raises(DeliveryFailed):
        post(f"http://127.0.0.1:{free_port()}/hook", BODY, {}, timeout=1, allow_private=True)


def test_https_to_a_checked_address_verifies_the_certificate(certificate):
    tls = Receiver(certificate)
    try:
        answer = post(f"https://127.0.0.1:{tls.port}/hook", BODY, {}, timeout=2, allow_private=True,
                      ca_file=str(certificate[0]))
        assert answer.status == 200 and tls.requests[0]["body"] == BODY
        with pytest.raises(DeliveryFailed):  # an unknown certificate authority
            post(f"https://127.0.0.1:{tls.port}/hook", BODY, {}, timeout=2, allow_private=True)
    finally:
        tls.close()
