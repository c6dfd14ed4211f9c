"""Jinja filters and globals shared by the pages and the emails."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from flask import Flask, current_app, request, url_for
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf.csrf import generate_csrf

from app.domain.privacy import destination_area
from app.domain.roles import Permission, may
from app.domain.status import MAIN_STAGES, RETURN_LEG, Status, held_from_timeline, is_final, stage_index
from app.domain.timeutil import isoformat_z
from app.i18n.locales import format_local_date, format_local_time, format_rupees

# What a customer is told when a shipment has left the happy path. Shown as plain text, never as a colour only.
EXCEPTION_TEXT = {
    Status.ON_HOLD: _l("Your shipment is on hold at the stage shown below. It moves on as soon as the hold is "
                       "released."),
    Status.DELIVERY_ATTEMPTED: _l("We tried to deliver your shipment but could not. We will try again."),
    Status.RTO_INITIATED: _l("Your shipment could not be delivered. It is being sent back to its sender."),
    Status.RTO_IN_TRANSIT: _l("Your shipment is on its way back to its sender."),
    Status.RETURNED_TO_SENDER: _l("Your shipment could not be delivered and was returned to its sender."),
    Status.CANCELLED: _l("This shipment was cancelled before it was picked up."),
}
HELD_ON_THE_WAY_BACK = _l("Your shipment is on hold on its way back to its sender. It moves on as soon as the hold "
                          "is released.")
STOPPED = frozenset({Status.RETURNED_TO_SENDER, Status.CANCELLED})


def local_time(value) -> str:
    """A stored UTC time in DISPLAY_TIMEZONE, formatted with Babel for the page's language."""
    return format_local_time(value, current_app.config["DISPLAY_TIMEZONE"])


def local_date(value) -> str:
    """The day of a stored UTC time in DISPLAY_TIMEZONE ("10 Dec 2026"), in the page's language."""
    return format_local_date(value, current_app.config["DISPLAY_TIMEZONE"])


def css_slug(value: str) -> str:
    """"Out for Delivery" → "out-for-delivery", for class names such as badge-out-for-delivery."""
    return "-".join(str(value).lower().split())


@dataclass(frozen=True)
class Stage:
    name: str
    state: str  # done | current | paused | todo | stopped


@dataclass(frozen=True)
class Progress:
    stages: tuple[Stage, ...]
    exception: str | None  # the exceptional status, if the shipment is in one
    exception_text: str | None
    step: int  # 1-based position of the last stage reached

    @property
    def total(self) -> int:
        return len(self.stages)


def shipment_progress(status: str, events: Sequence) -> Progress:
    """The five-stage progress bar for a shipment, from its status and its events (oldest first).

    On Hold sits at the stage it interrupted (the latest event that is not On Hold); Delivery Attempted at
    Out for Delivery. Returned to Sender and Cancelled stop at the furthest main stage the shipment reached, and so
    does the return leg (RTO Initiated, RTO In Transit, or On Hold on the way back): the stages after it will not
    happen, and the notice says the parcel is going back.
    """
    statuses = [e.status for e in events]
    held = held_from_timeline(statuses) if status == Status.ON_HOLD else None
    returning = status in RETURN_LEG or held in RETURN_LEG
    stopped = status in STOPPED or returning
    if stopped:
        reached = max((MAIN_STAGES.index(s) for s in statuses if s in MAIN_STAGES), default=0)
    else:
        reached = stage_index(status, held)
    delivered = status == Status.DELIVERED
    stages = []
    for index, name in enumerate(MAIN_STAGES):
        if index < reached or (index == reached and (delivered or stopped)):
            state = "done"
        elif index == reached:
            state = "paused" if status == Status.ON_HOLD else "current"
        else:
            state = "stopped" if stopped else "todo"
        stages.append(Stage(str(name), state))
    exception = status if status in EXCEPTION_TEXT else None
    text = HELD_ON_THE_WAY_BACK if status == Status.ON_HOLD and returning else EXCEPTION_TEXT.get(status)
    return Progress(tuple(stages), exception, text, reached + 1)


def action_label(action: str) -> str:
    """"status_changed" → "Status changed"."""
    return str(action).replace("_", " ").capitalize()


def current_user_may(permission: str) -> bool:
    """Whether the signed-in staff member's role holds `permission` (False when nobody is signed in).

    Templates decide what to offer with this (`may(Permission.X)`), never with role names: the roles table stays
    the one place.
    """
    return current_user.is_authenticated and may(current_user.role, permission)


@dataclass(frozen=True)
class MenuLink:
    label: str  # a lazy string: said in the page's language
    endpoint: str  # or, for a link by path, the path (starting with "/")
    permission: str
    current_on: tuple[str, ...]  # endpoints, or prefixes of them, on which this link is the current page

    def url(self) -> str | None:
        """Where the link goes; None when its endpoint is not in this build."""
        if self.endpoint.startswith("/"):
            return self.endpoint
        return url_for(self.endpoint) if self.endpoint in current_app.view_functions else None


# The staff menu, in order. A link shows when its endpoint exists in this build and the role holds its permission.
STAFF_MENU = (
    MenuLink(_l("Dashboard"), "admin.dashboard", Permission.VIEW_SHIPMENTS,
             ("admin.dashboard", "admin.shipment_detail", "admin.record_update", "admin.import")),
    MenuLink(_l("Scan"), "admin.scan", Permission.CHANGE_SHIPMENTS, ("admin.scan",)),
    MenuLink(_l("Run sheets"), "admin.runsheets", Permission.VIEW_FIELD, ("admin.runsheet",)),
    MenuLink(_l("Live map"), "admin.live_map", Permission.VIEW_OPERATIONS, ("admin.live",)),
    MenuLink(_l("Couriers"), "admin.couriers", Permission.VIEW_FIELD, ("admin.couriers", "admin.courier_")),
    MenuLink(_l("Cash"), "admin.cod_ledger", Permission.VIEW_FIELD, ("admin.cod", "admin.receive_remittance")),
    MenuLink(_l("Zones"), "admin.zones_page", Permission.VIEW_FIELD, ("admin.zone",)),
    MenuLink(_l("Dispatch"), "admin.dispatch_page", Permission.VIEW_FIELD, ("admin.dispatch",)),
    MenuLink(_l("Failed deliveries"), "admin.ndr_list", Permission.VIEW_SHIPMENTS, ("admin.ndr_list",)),
    MenuLink(_l("Alerts"), "admin.alerts_page", Permission.VIEW_OPERATIONS, ("admin.alerts_page", "admin.acknowledge")),
    MenuLink(_l("SLA"), "admin.sla_page", Permission.VIEW_OPERATIONS, ("admin.sla_page",)),
    MenuLink(_l("Reports"), "admin.reports", Permission.VIEW_OPERATIONS, ("admin.reports",)),
    # Couriers get the courier app and their account, nothing else.
    MenuLink(_l("Courier app"), "courier.app", Permission.USE_COURIER_APP, ("courier.",)),
    MenuLink(_l("Outbox"), "notifications.outbox", Permission.VIEW_OUTBOX,
             ("notifications.outbox", "notifications.retry")),
    MenuLink(_l("Settings"), "notifications.defaults", Permission.MANAGE_SETTINGS,
             ("notifications.defaults", "notifications.set_defaults")),
    MenuLink(_l("Field settings"), "admin.field_settings", Permission.MANAGE_SETTINGS,
             ("admin.field_settings", "admin.save_field_settings")),
    MenuLink(_l("Promises"), "admin.promises_page", Permission.MANAGE_SETTINGS,
             ("admin.promises_page", "admin.save_promises")),
    MenuLink(_l("Audit"), "admin.audit", Permission.VIEW_AUDIT, ("admin.audit",)),
    MenuLink(_l("Webhooks"), "admin.webhooks_page", Permission.MANAGE_INTEGRATIONS,
             ("admin.webhooks_page", "admin.create_webhook", "admin.rotate_webhook_secret")),
    MenuLink(_l("Staff"), "admin.users", Permission.MANAGE_STAFF, ("admin.user",)),
    MenuLink(_l("API keys"), "admin.api_keys", Permission.MANAGE_INTEGRATIONS, ("admin.api_key",)),
)


@dataclass(frozen=True)
class MenuEntry:
    label: str
    url: str
    current: bool


def staff_menu() -> list[MenuEntry]:
    """The staff links the signed-in member may follow (none for visitors). On public pages the member is the
    cookie's hint (no session look-up there): links only, each page checks the real session itself."""
    from app.auth.guard import navigation_user

    user = navigation_user()
    if not user.is_authenticated:
        return []
    endpoint = request.endpoint or ""
    return [MenuEntry(str(link.label), url, endpoint.startswith(link.current_on))
            for link in STAFF_MENU
            if may(user.role, link.permission) and (url := link.url()) is not None]


def register_template_helpers(app: Flask) -> None:
    app.jinja_env.filters["local_time"] = local_time
    app.jinja_env.filters["local_date"] = local_date
    app.jinja_env.filters["iso_z"] = isoformat_z
    app.jinja_env.filters["slug"] = css_slug
    app.jinja_env.filters["action_label"] = action_label
    app.jinja_env.filters["destination_area"] = destination_area
    app.jinja_env.filters["rupees"] = lambda amount: format_rupees(Decimal(str(amount)))
    app.jinja_env.globals.update(csrf_token=generate_csrf, MAIN_STAGES=MAIN_STAGES, is_final=is_final,
                                 shipment_progress=shipment_progress, may=current_user_may, Permission=Permission,
                                 staff_menu=staff_menu)
