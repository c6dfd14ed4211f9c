"""The database layer: the engine pool, prepared statements, database errors, roles and the schema check."""
