"""Every model, re-exported so Alembic sees the whole metadata."""
from app.models.alert import Alert
from app.models.api_key import ApiKey
from app.models.audit_entry import AuditEntry
from app.models.courier import CourierPosition, CourierProfile
from app.models.delivery_estimate import DeliveryEstimate
from app.models.delivery_proof import DeliveryProof
from app.models.detail_check import DetailCheck
from app.models.field_records import CodCollection, CodRemittance, CourierEventReceipt, DeliveryCode, FieldSetting
from app.models.idempotency_key import IdempotencyKey
from app.models.ndr import NonDeliveryReport
from app.models.notification import Notification
from app.models.notification_choice import NotificationChoice, NotificationDefault
from app.models.planning import DispatchRun, GeocodeCacheEntry, RunSheetOverride, Zone
from app.models.promise_rule import PromiseRule
from app.models.rate_card import RateCardVersion
from app.models.runsheet import RunSheet, RunSheetStop
from app.models.served_pincode import ServedPincode
from app.models.shipment import Shipment
from app.models.staff_session import LoginThrottle, StaffSession
from app.models.timer import Timer
from app.models.tracking_event import TrackingEvent
from app.models.user import User
from app.models.webhook import WebhookAttempt, WebhookSubscription

__all__ = ["Alert", "ApiKey", "AuditEntry", "CodCollection", "CodRemittance", "CourierEventReceipt",
           "CourierPosition", "CourierProfile", "DeliveryCode", "DeliveryEstimate", "DeliveryProof", "DetailCheck",
           "DispatchRun", "FieldSetting", "GeocodeCacheEntry", "IdempotencyKey", "LoginThrottle",
           "NonDeliveryReport", "Notification", "NotificationChoice", "NotificationDefault", "PromiseRule",
           "RateCardVersion", "RunSheet", "RunSheetOverride", "RunSheetStop", "ServedPincode", "Shipment",
           "StaffSession", "Timer", "TrackingEvent", "User", "WebhookAttempt", "WebhookSubscription", "Zone"]
