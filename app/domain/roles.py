"""Staff roles and what each may do, as data (like the status table). The one place that says who may do what."""
from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"
    COURIER = "courier"


ROLES: tuple[str, ...] = tuple(r.value for r in Role)

ROLE_DESCRIPTIONS: dict[str, str] = {
    Role.ADMIN: "Everything, including staff accounts, API keys, the audit trail and the outbox.",
    Role.OPERATOR: "Sees all shipments, records status changes, retries emails.",
    Role.VIEWER: "Read-only staff (customer support): dashboard, shipments with contact details, timelines.",
    Role.COURIER: "Delivers in the field with the courier app: only the parcels on their own open run sheet.",
}


class Permission(StrEnum):
    VIEW_SHIPMENTS = "view_shipments"  # dashboard, shipment pages with contact details, timelines
    CHANGE_SHIPMENTS = "change_shipments"  # status changes and everything else that writes shipments
    VIEW_OUTBOX = "view_outbox"
    RETRY_NOTIFICATIONS = "retry_notifications"
    MANAGE_STAFF = "manage_staff"  # staff accounts and their sessions
    VIEW_AUDIT = "view_audit"
    MANAGE_INTEGRATIONS = "manage_integrations"  # API keys, webhooks
    MANAGE_OWN_ACCOUNT = "manage_own_account"  # /account: one's own password and sessions
    MANAGE_SETTINGS = "manage_settings"  # app-wide settings stored in the database (notification defaults)
    MANAGE_FIELD = "manage_field"  # run sheets, handing them out, cash remitted by couriers
    VIEW_FIELD = "view_field"  # couriers, their positions and trails, the cash ledger
    USE_COURIER_APP = "use_courier_app"  # /courier: one's own stops, actions, positions
    MANAGE_ZONES = "manage_zones"  # delivery zones: their outlines and hubs
    VIEW_OPERATIONS = "view_operations"  # alerts, SLA lists, the live map, the operations report
    HANDLE_ALERTS = "handle_alerts"  # acknowledging alerts


PERMISSIONS: dict[str, frozenset[str]] = {
    Permission.VIEW_SHIPMENTS: frozenset({Role.ADMIN, Role.OPERATOR, Role.VIEWER}),
    Permission.CHANGE_SHIPMENTS: frozenset({Role.ADMIN, Role.OPERATOR}),
    Permission.VIEW_OUTBOX: frozenset({Role.ADMIN, Role.OPERATOR}),
    Permission.RETRY_NOTIFICATIONS: frozenset({Role.ADMIN, Role.OPERATOR}),
    Permission.MANAGE_STAFF: frozenset({Role.ADMIN}),
    Permission.VIEW_AUDIT: frozenset({Role.ADMIN}),
    Permission.MANAGE_INTEGRATIONS: frozenset({Role.ADMIN}),
    Permission.MANAGE_OWN_ACCOUNT: frozenset({Role.ADMIN, Role.OPERATOR, Role.VIEWER, Role.COURIER}),
    Permission.MANAGE_SETTINGS: frozenset({Role.ADMIN}),
    Permission.MANAGE_FIELD: frozenset({Role.ADMIN, Role.OPERATOR}),
    Permission.VIEW_FIELD: frozenset({Role.ADMIN, Role.OPERATOR}),
    Permission.USE_COURIER_APP: frozenset({Role.COURIER}),
    Permission.MANAGE_ZONES: frozenset({Role.ADMIN}),
    Permission.VIEW_OPERATIONS: frozenset({Role.ADMIN, Role.OPERATOR, Role.VIEWER}),
    Permission.HANDLE_ALERTS: frozenset({Role.ADMIN, Role.OPERATOR}),
}


def roles_with(permission: str) -> frozenset[str]:
    """The roles that hold `permission` (KeyError for a permission that does not exist: a typo must not pass)."""
    return PERMISSIONS[permission]


def may(role: str | None, permission: str) -> bool:
    return role is not None and role in PERMISSIONS[permission]
