"""Absolute links (app.domain.links): one join of PUBLIC_BASE_URL and a path, whatever the base ends with and
whatever prefix it has, for every place that gives a link to someone outside."""
from __future__ import annotations

import json

import pytest
from flask import url_for
from sqlalchemy import select

from app.api.problems import problem_type
from app.domain import links
from app.extensions import db
from app.models import Notification
from app.services.outbox import messages, preferences
from app.services.shipments.booking import NewShipment, create_shipment

BASES = ["https://x.example", "https://x.example/", "https://x.example/waybill", "https://x.example/waybill/"]


@pytest.mark.parametrize("base", BASES)
def test_a_link_has_one_slash_between_the_base_and_the_path(base):
    root = base.rstrip("/")
    assert links.absolute_url(base, "/admin/webhooks") == f"{root}/admin/webhooks"
    assert links.absolute_url(base, "api/docs") == f"{root}/api/docs"
    assert links.tracking_url(base, "3EE0AFAD") == f"{root}/track/3EE0AFAD"
    assert links.choices_url(base, "12e.abc-_") == f"{root}/n/12e.abc-_"


def test_what_data_puts_in_a_path_is_percent_encoded():
    assert links.tracking_url("https://x.example", "a/b c?d#e") == "https://x.example/track/a%2Fb%20c%3Fd%23e"
    assert links.choices_url("https://x.example", "1e/..") == "https://x.example/n/1e%2F.."


def test_the_paths_are_the_routes_paths(app):
    with app.test_request_context():
        assert url_for("tracking.track", tracking_id="3EE0AFAD") == links.TRACKING_PATH + "3EE0AFAD"
        assert url_for("notifications.choices", token="12e.abc") == links.CHOICES_PATH + "12e.abc"


@pytest.mark.parametrize("base", ["https://x.example/", "https://x.example/waybill/"])
def test_every_link_given_out_is_built_under_the_base(app, client, base):
    """Set on the app as written, trailing slash included (the setting's own reading strips it; these links
    must not depend on that)."""
    app.config["PUBLIC_BASE_URL"] = base
    root = base.rstrip("/")
    with app.app_context():
        tracking_id = create_shipment(NewShipment("Asha Rao", "Vikram Nair", "+919876543210", "vikram@example.com",
                                                  "Kochi")).tracking_id
        db.session.commit()
    tracking = f"{root}/track/{tracking_id}"
    assert client.get(f"/track/{tracking_id}").get_json()["tracking_url"] == tracking
    with app.app_context():
        row = db.session.scalars(select(Notification).where(Notification.channel == "email")).one()
        facts = messages.load_facts([row])
        email = messages.render_email(row, facts)
        choices = preferences.choices_url(row.shipment_id, "email")
        assert choices.startswith(f"{root}/n/") and "//" not in choices.removeprefix("https://")
        assert tracking in email.body_text and f'href="{tracking}"' in email.body_html
        assert email.unsubscribe_url == choices
        assert tracking in messages.render_sms(row, facts).texts[0]
        payload = json.loads(messages.render_webhook(row, facts).body)
        assert payload["data"]["shipment"]["tracking_url"] == tracking
        assert f"{root}/admin/webhooks" in messages.render_admin_alert(row, facts).body_text
        assert problem_type(404) == f"{root}/api/docs#problem-not-found"
