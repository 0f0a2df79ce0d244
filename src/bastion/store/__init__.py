"""Storage: tables, repositories, engine set-up and migrations (SQLite | PostgreSQL)."""
