"""The outbox: rows queued in the transaction that changes a shipment (email, SMS, webhooks, admin alerts), how
they are rendered, the recipients' preferences, webhook subscriptions, and the staff views of the outbox. The
worker that sends them is app.notifier."""
