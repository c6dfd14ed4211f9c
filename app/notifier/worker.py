"""Placeholder until the notifications issue lands: the outbox fills, nothing is sent yet."""
import logging

log = logging.getLogger(__name__)


def start_worker_thread(app) -> None:
    log.info("Notification worker not available yet; notifications stay pending in the outbox.")
