"""SQL spelled per database: the one layer that knows SQLite from PostgreSQL."""
