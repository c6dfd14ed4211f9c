"""What every request shares: security headers, request checks and hooks, access log, forms, templates, JSON."""
