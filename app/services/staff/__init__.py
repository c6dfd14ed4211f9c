"""Staff and integrators: users, sessions, sign-in, passwords, API keys, the audit log and idempotency keys."""
