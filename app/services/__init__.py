"""Business rules. No request, response, flash or template in here; callers commit."""
