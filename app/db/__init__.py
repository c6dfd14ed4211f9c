"""The database connection layer: the engine pool, prepared statements, database errors and roles."""
