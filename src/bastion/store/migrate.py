"""Apply, revert and inspect Alembic migrations on an async engine.

On PostgreSQL every upgrade and downgrade holds one advisory lock for its whole run, so
nodes that start (and migrate) together take turns: the second waits, then finds the
schema current and has nothing to do.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from alembic import command, context
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine
from sqlalchemy.util import await_

T = TypeVar("T")

_SCRIPTS = Path(__file__).parent / "migrations"

MIGRATION_LOCK = 0x62617374_696F6E
"""The advisory lock key every Bastion process migrates under ("bastion" in ASCII)."""


ASYNC_CONNECTION = "async_connection"
"""Where a migration finds the async connection it runs on (to call async repositories)."""


def _config(
    connection: Connection | None = None, async_connection: AsyncConnection | None = None
) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPTS))
    config.attributes["connection"] = connection
    config.attributes[ASYNC_CONNECTION] = async_connection
    return config


def run_async(awaitable: Awaitable[T]) -> T:
    """Inside a migration: run an async repository call on the migration's connection.

    Migrations run synchronously inside ``AsyncConnection.run_sync``; this hands the
    awaitable back to the event loop and waits for it (SQLAlchemy's greenlet bridge).
    """
    return await_(awaitable)


def async_connection() -> AsyncConnection:
    """Inside a migration: the async connection it runs on, carrying the column cipher."""
    found: AsyncConnection | None = context.config.attributes.get(ASYNC_CONNECTION)
    if found is None:
        raise RuntimeError("run migrations through `bastion migrate`")
    return found


def head_revision() -> str | None:
    """The newest revision this code ships."""
    return ScriptDirectory.from_config(_config()).get_current_head()


def revisions() -> list[str]:
    """Every revision this code ships, oldest first."""
    script = ScriptDirectory.from_config(_config())
    return [rev.revision for rev in reversed(list(script.walk_revisions()))]


async def _run(engine: AsyncEngine, action: Callable[[Config], None]) -> None:
    async with (
        engine.connect() as conn,
        _migration_lock(conn),
        _sqlite_keys_deferred(conn),
        conn.begin(),
    ):
        if conn.dialect.name == "sqlite":
            # Python's sqlite3 opens no transaction before DDL, so each CREATE would
            # commit alone and two migrating processes would interleave. Take the write
            # lock first: the whole run is one transaction and a second process waits.
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        await conn.run_sync(lambda sync_conn: action(_config(sync_conn, conn)))
        await _check_foreign_keys(conn)


@contextlib.asynccontextmanager
async def _sqlite_keys_deferred(conn: AsyncConnection) -> AsyncIterator[None]:
    """On SQLite, switch foreign-key enforcement off for the block, and back on after.

    SQLite changes a table's columns by copying it and dropping the original, and with
    enforcement on, dropping a table deletes the rows of every table whose key cascades
    from it: a migration that altered ``messages`` would take every reaction with it.
    SQLite's documented procedure is to turn enforcement off (which only takes effect
    outside a transaction), migrate, and check the keys before committing.
    """
    if conn.dialect.name != "sqlite":
        yield
        return
    await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
    await conn.commit()
    try:
        yield
    finally:
        await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
        await conn.commit()


async def _check_foreign_keys(conn: AsyncConnection) -> None:
    """On SQLite, refuse (and so roll back) a migration that left a dangling key."""
    if conn.dialect.name != "sqlite":
        return
    dangling = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).fetchall()
    if dangling:
        tables = sorted({str(row[0]) for row in dangling})
        raise RuntimeError(f"the migration left rows without their parent in {tables}")


@contextlib.asynccontextmanager
async def _migration_lock(conn: AsyncConnection) -> AsyncIterator[None]:
    """On PostgreSQL, hold ``MIGRATION_LOCK`` on ``conn`` for the block (waiting for it).

    The lock is session-level, so it spans the migration transaction and is held until
    released here, or until the connection ends if the release itself fails.
    """
    if conn.dialect.name != "postgresql":
        yield
        return
    await conn.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK})
    await conn.commit()
    try:
        yield
    finally:
        try:
            await conn.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK})
            await conn.commit()
        except DBAPIError:
            # The connection broke: its session, and the lock with it, ends when it is
            # discarded. The migration's own outcome is already decided.
            await conn.invalidate()


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Bring the schema up to ``revision``."""
    await _run(engine, lambda config: command.upgrade(config, revision))


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    """Take the schema back down to ``revision``."""
    await _run(engine, lambda config: command.downgrade(config, revision))


async def current_revision(engine: AsyncEngine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    async with engine.connect() as conn:
        return await conn.run_sync(
            lambda sync_conn: MigrationContext.configure(sync_conn).get_current_revision()
        )


async def is_current(engine: AsyncEngine) -> bool:
    """Tell whether the database schema is at this code's head revision."""
    return await current_revision(engine) == head_revision()
