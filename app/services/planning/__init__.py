"""Planning: delivery zones and dispatch."""
