"""Alembic migrations; applied by `bastion migrate` and at `serve` start."""
