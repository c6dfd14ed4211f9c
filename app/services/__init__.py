"""Business rules, one package per domain. No request, response, flash or template in here; callers commit.

shipments/  booking, status changes, queries, the public document, scans, imports, exports, labels, estimates, proofs
outbox/     queueing email, SMS and webhook rows, rendering them, preferences, webhooks, the staff views of the outbox
staff/      users, sessions, sign-in, passwords, API keys, audit, idempotency
field/      couriers, run sheets, locations
planning/   zones and dispatch
"""
