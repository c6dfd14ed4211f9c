"""Absolute links to Waybill's pages, as messages, labels, JSON answers and the API give them: one way to join
PUBLIC_BASE_URL and a path, and the path of each page linked from outside.

PUBLIC_BASE_URL is where Waybill is reached from outside, a path prefix included when it is served under one
("https://track.example.com/waybill"). Whether or not it ends in "/", a link has exactly one slash between it
and the page's path. What goes into a path from data (tracking IDs, tokens) is percent-encoded.
"""
from __future__ import annotations

from urllib.parse import quote

TRACKING_PATH = "/track/"  # + tracking ID: the public tracking page (app.tracking's route)
CHOICES_PATH = "/n/"  # + token: the recipient's choices page and one-click unsubscribe (app.notifications' route)
NDR_PATH = "/r/"  # + token: the recipient's answer to a failed delivery (app.tracking's route)


def absolute_url(base_url: str, path: str) -> str:
    """`path` (with or without its leading "/") under `base_url`, one slash between them."""
    return f"{base_url.rstrip('/')}/{path.lstrip('/')}"


def tracking_url(base_url: str, tracking_id: str) -> str:
    """The public tracking page of a shipment."""
    return absolute_url(base_url, TRACKING_PATH + quote(tracking_id, safe=""))


def choices_url(base_url: str, token: str) -> str:
    """The recipient's choices page (and one-click unsubscribe) that a signed token opens."""
    return absolute_url(base_url, CHOICES_PATH + quote(token, safe=""))


def ndr_url(base_url: str, token: str) -> str:
    """The recipient's page for answering a failed delivery attempt, opened by its signed token."""
    return absolute_url(base_url, NDR_PATH + quote(token, safe=""))
