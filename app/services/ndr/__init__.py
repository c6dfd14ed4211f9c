"""Failed deliveries: the non-delivery report of each failed attempt, the recipient's say, reattempts, escalation
and the return to origin (app.services.ndr.workflow)."""
