"""Shipments: booking, status changes, queries, the public tracking document, scans, imports, exports, labels,
delivery estimates and proofs of delivery."""
