"""Small helpers the repositories share."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.records import DuplicateKeyError


def insert_ignoring_duplicates(conn: AsyncConnection, table: Table) -> Insert:
    """An INSERT that silently skips a row whose key already exists."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table).on_conflict_do_nothing()
    return sqlite.insert(table).on_conflict_do_nothing()


async def insert_row(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> None:
    """Insert one row; a unique-constraint hit raises ``DuplicateKeyError``.

    The transaction is unusable afterwards (PostgreSQL aborts it): callers let the
    error end the transaction and, where it means "already exists", read again.
    """
    try:
        await conn.execute(table.insert().values(**values))
    except IntegrityError as exc:
        raise DuplicateKeyError(table.name) from exc
