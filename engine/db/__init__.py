"""The database: engines and sessions (SQLite by default, PostgreSQL by URL) and the schema's migrations."""
