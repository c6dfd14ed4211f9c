"""What the recipient gets: one email per status change, with the right parts, wording and headers."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes, policy
from email.utils import parseaddr, parsedate_to_datetime
from pathlib import Path

from app.domain.status import ALL_STATUSES
from app.domain.timeutil import to_local
from app.notifier.sender import OutgoingEmail, build_message
from tests.notifications.conftest import SENDER, notification_rows

JOURNEY = [("Picked Up", "Mumbai Hub"), ("In Transit", "Pune Hub"), ("Out for Delivery", "Kochi Depot"),
           ("Delivered", "Kochi")]
TEMPLATES = Path(__file__).resolve().parents[2] / "app" / "templates" / "email" / "status"


def text_and_html(message) -> tuple[str, str]:
    return message.get_body(("plain",)).get_content(), message.get_body(("html",)).get_content()


def test_every_status_change_sends_one_email_with_proper_headers(app, desk, drain, smtp_server):
    tracking_id = desk.book()
    for status, location in JOURNEY:
        assert desk.update(tracking_id, status, location).status_code == 200

    report = drain()

    messages = smtp_server.sink.received()
    assert report.sent == len(messages) == 5
    assert [m["Subject"] for m in messages] == [f"Shipment {tracking_id}: {status}"
                                                 for status in ["Booked"] + [s for s, _ in JOURNEY]]
    rows = notification_rows(app)
    assert [m["X-Waybill-Notification-Id"] for m in messages] == [str(row.id) for row in rows]
    assert len({m["Message-ID"] for m in messages}) == 5
    now = datetime.now(UTC)
    for message in messages:
        assert message["From"] == SENDER
        assert message["To"] == "vikram@example.com"
        assert abs(parsedate_to_datetime(message["Date"]) - now) < timedelta(minutes=2)
        assert parseaddr(message["Message-ID"])[1].endswith("@waybill.test")
        assert message.get_content_type() == "multipart/alternative"
        assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
        text, html = text_and_html(message)
        link = f"http://waybill.test/track/{tracking_id}"
        assert link in text
        assert f'href="{link}"' in html
    assert all(row.state == "sent" and row.attempts == 1 and row.sent_at for row in rows)


def test_email_shows_status_location_times_and_recent_timeline(app, desk, drain, smtp_server, client):
    tracking_id = desk.book()
    for status, location in JOURNEY[:2]:
        desk.update(tracking_id, status, location)
    drain()

    events = client.get(f"/track/{tracking_id}").get_json()["events"]
    in_transit = datetime.fromisoformat(events[-1]["occurred_at"].replace("Z", "+00:00"))
    local = to_local(in_transit, "Asia/Kolkata")
    text, html = text_and_html(smtp_server.sink.received()[-1])

    for body in (text, html):
        assert tracking_id in body
        assert "In Transit" in body
        assert "Pune Hub" in body
        assert local.strftime("%d %b %Y, %H:%M IST") in body
        assert in_transit.strftime("%d %b %Y, %H:%M UTC") in body
        assert "on its way to Kochi" in body  # the In Transit wording
        # The timeline: every step so far, newest first.
        assert body.index("Pune Hub") < body.index("Mumbai Hub") < body.index("Origin Facility")


def test_display_time_zone_is_configurable(make_app, desk_for, drain, smtp_server):
    other = make_app(**smtp_server.settings(DISPLAY_TIMEZONE="America/New_York"))
    desk_for(other).book()
    drain(other)
    text, _ = text_and_html(smtp_server.sink.received()[0])
    assert " EST" in text or " EDT" in text
    assert "IST" not in text


def test_timeline_in_an_email_is_short(app, desk, drain, smtp_server):
    tracking_id = desk.book()
    for status in ["Picked Up", "In Transit", "In Transit", "In Transit", "In Transit", "In Transit"]:
        assert desk.update(tracking_id, status, "Hub").status_code == 200
    drain()
    text, html = text_and_html(smtp_server.sink.received()[-1])
    timeline = text.split("Recent updates")[1].split("Track your shipment")[0]
    assert len([line for line in timeline.splitlines() if line.strip().startswith(("*", "-"))]) == 5  # README
    assert "Origin Facility" not in text
    assert html.count("<li") == 5


def test_customer_message_is_escaped_in_html_and_plain_in_text(app, desk, drain, smtp_server):
    tracking_id = desk.book()
    desk.update(tracking_id, "Picked Up", "Mumbai Hub", customer_message="Handle <b>with</b> care & love")
    drain()
    text, html = text_and_html(smtp_server.sink.received()[-1])
    assert "Handle <b>with</b> care & love" in text
    assert "Handle &lt;b&gt;with&lt;/b&gt; care &amp; love" in html


def test_the_staff_note_never_reaches_the_email(app, desk, drain, smtp_server):
    tracking_id = desk.book()
    desk.update(tracking_id, "Picked Up", "Mumbai Hub", note="Courier: Ravi, 98450 12345",
                customer_message="Collected from the sender")
    drain()
    text, html = text_and_html(smtp_server.sink.received()[-1])
    assert "Collected from the sender" in text and "Collected from the sender" in html
    assert "Ravi" not in text + html and "98450" not in text + html


def test_each_status_has_its_own_text_and_html_template():
    for status in ALL_STATUSES:
        slug = "_".join(status.lower().split())
        for extension in ("txt", "html"):
            assert (TEMPLATES / f"{slug}.{extension}").is_file(), f"no {extension} template for {status}"


def test_wording_follows_the_status(app, desk, drain, smtp_server):
    cancelled = desk.book()
    desk.update(cancelled, "Cancelled", "Origin Facility")
    held = desk.book()
    desk.update(held, "On Hold", "Origin Facility")
    drain()
    texts = {m["Subject"]: text_and_html(m)[0] for m in smtp_server.sink.received()}
    assert "was cancelled before it was picked up" in texts[f"Shipment {cancelled}: Cancelled"]
    assert "is on hold at Origin Facility" in texts[f"Shipment {held}: On Hold"]
    assert "is booked" in texts[f"Shipment {held}: Booked"]


def test_a_refused_status_change_queues_no_email(app, desk):
    tracking_id = desk.book()
    response = desk.update(tracking_id, "Delivered", "Kochi")  # Booked cannot become Delivered
    assert response.status_code == 409
    assert len(notification_rows(app)) == 1


def test_an_email_rendered_after_later_changes_says_what_was_true_at_its_event(app, desk, drain, smtp_server):
    # Rendering happens when the worker sends: here after the shipment has moved on twice.
    tracking_id = desk.book()
    for status, location in JOURNEY[:2]:
        desk.update(tracking_id, status, location)
    drain()
    booked, picked_up, _ = (text_and_html(m)[0] for m in smtp_server.sink.received())

    assert "is booked" in booked and "Status:      Booked" in booked
    booked_timeline = booked.split("Recent updates")[1].split("Track your shipment")[0]
    assert "Origin Facility" in booked_timeline and "Mumbai Hub" not in booked_timeline
    assert "Pune Hub" not in booked and "In Transit" not in booked

    assert "Status:      Picked Up" in picked_up and "Location:    Mumbai Hub" in picked_up
    timeline = [line.strip() for line in picked_up.split("Recent updates")[1].split("Track your shipment")[0]
                .splitlines() if line.strip()[:1] in "*-" and line.strip()]
    assert [line[0] for line in timeline] == ["*", "-"]  # its own event marked current, then the booking
    assert "Mumbai Hub" in timeline[0] and "Origin Facility" in timeline[1]
    assert "Pune Hub" not in picked_up


def test_both_parts_are_quoted_printable_utf8_that_decodes_to_the_rendered_text():
    """Non-ASCII names, "=", trailing spaces and lines far longer than SMTP allows survive the encoding exactly,
    and no encoded line is longer than 76 characters."""
    body = "नमस्ते रवि,\nA = sign, a trailing space \nand " + "a long line " * 30 + "\n.\n"
    email = OutgoingEmail(notification_id=7, recipient="ravi@example.com", subject="Shipment 3EE0AFAD: Booked",
                          body_text=body, body_html=f"<p>{body}</p>", created_at=datetime(2026, 12, 1, tzinfo=UTC))
    raw = build_message(email, {"MAIL_DEFAULT_SENDER": SENDER}).as_bytes()
    message = message_from_bytes(raw, policy=policy.default)
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    for part, expected in ((plain, body), (html, f"<p>{body}</p>")):
        assert part["Content-Transfer-Encoding"] == "quoted-printable"
        assert part.get_content_charset() == "utf-8"
        assert part.get_content() == expected
    assert max(len(line) for line in raw.split(b"\n")) <= 78  # 76 and the line break
    assert raw.isascii()
