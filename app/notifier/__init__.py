"""Sending the outbox: mail backends and the worker that drains the notifications table."""
