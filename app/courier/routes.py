"""The courier app: its page, manifest, service worker, the day's stops and the actions sent from the door."""
from app.courier import bp  # noqa: F401
