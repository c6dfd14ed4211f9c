"""Couriers in the field: couriers, run sheets and their locations."""
