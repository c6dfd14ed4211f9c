"""JSON shapes of the outbox, for staff (the recipient's address is shown: staff may see it)."""
from __future__ import annotations

from app.domain.timeutil import isoformat_z
from app.models import Notification
from app.services.outbox.preferences import ShipmentPreferences
from app.services.outbox.queueing import OutboxPage


def notification_to_dict(notification: Notification, tracking_id: str | None = None) -> dict:
    data = {
        "id": notification.id,
        "channel": notification.channel,
        "state": notification.state,
        "attempts": notification.attempts,
        "last_error": notification.last_error,
        "recipient": notification.recipient,
        "subject": notification.subject,
        "created_at": isoformat_z(notification.created_at),
        "next_attempt_at": isoformat_z(notification.next_attempt_at),
        "sent_at": isoformat_z(notification.sent_at),
    }
    if tracking_id is not None:
        data["tracking_id"] = tracking_id
    return data


def outbox_page_to_dict(page: OutboxPage) -> dict:
    return {
        "notifications": [notification_to_dict(e.notification, e.tracking_id) for e in page.entries],
        "state": page.state,
        "page": page.page,
        "per_page": page.per_page,
        "pages": page.pages,
        "total": page.total,
        "counts": page.counts,
    }


def preferences_to_dict(preferences: ShipmentPreferences) -> dict:
    """A shipment's notification choices ("default" where the recipient made none) and its suppressed messages."""
    return {
        "notification_choices": {channel: choice or "default" for channel, choice in preferences.choices.items()},
        "suppressed_notifications": [notification_to_dict(n) for n in preferences.suppressed],
    }
