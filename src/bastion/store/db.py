"""Engine and transaction set-up for SQLite (WAL) and PostgreSQL (asyncpg).

One ``Database`` per process, built by the composition root. Commands run in one
``write()`` transaction each, so a failed request never half-writes; queries use
``read()``. SQLite allows one writer at a time, so writes queue on a lock instead of
failing with "database is locked".
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from bastion.core.errors import Unavailable
from bastion.store import sqlite_inline

Connection = AsyncConnection
"""The connection type repositories take; the domain names it without importing SQLAlchemy."""

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
    # Checkpoints run in a worker thread (Database._checkpoint), never inside a commit.
    "PRAGMA wal_autocheckpoint=0",
)
_CHECKPOINT_EVERY = 1000


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def create_engine(
    url: str,
    *,
    pool_size: int = 10,
    connect_timeout: float = 5.0,
    echo: bool = False,
    sqlite_inline: bool = True,
) -> AsyncEngine:
    """Create an async engine for ``url``, configured for its backend."""
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url, connect_timeout, echo=echo, inline=sqlite_inline)
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"timeout": connect_timeout},
    )


def _sqlite_engine(url: str, timeout: float, *, echo: bool, inline: bool) -> AsyncEngine:
    path = make_url(url).database
    options: dict[str, Any] = {"echo": echo, "connect_args": {"timeout": timeout}}
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if inline:
            options["async_creator"] = sqlite_inline.creator(path, timeout)
    engine = create_async_engine(url, **options)
    event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
    return engine


def _checkpoint(path: str) -> None:
    """A passive WAL checkpoint on a connection of its own (it never blocks writers)."""
    try:
        connection = sqlite3.connect(path, timeout=1)
    except sqlite3.Error:
        return
    try:
        connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
    except sqlite3.Error:
        # Best effort: the next checkpoint picks up where this one could not.
        return
    finally:
        connection.close()


class Database:
    """Transactions over one engine; maps driver failures to ``Unavailable``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()
        # SQLite has one writer at a time anyway: keep its connection instead of checking
        # one out of the pool (and resetting it) for every command.
        self._writer: AsyncConnection | None = None
        self._path = engine.url.database if self.is_sqlite else None
        self._commits = 0
        self._checkpointing: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """Run one command in one transaction: all of it commits, or none of it."""
        if not self.is_sqlite:
            async with self._translate_errors(), self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self._translate_errors():
            conn = await self._writer_connection()
            try:
                async with conn.begin():
                    yield conn
            except DBAPIError:
                await self._drop_writer()
                raise
        self._after_commit()

    def _after_commit(self) -> None:
        """Every so many commits, fold the WAL back into the database, off the event loop."""
        self._commits += 1
        running = self._checkpointing is not None and not self._checkpointing.done()
        if self._commits < _CHECKPOINT_EVERY or running or not self._path:
            return
        self._commits = 0
        self._checkpointing = asyncio.create_task(asyncio.to_thread(_checkpoint, self._path))

    async def _writer_connection(self) -> AsyncConnection:
        if self._writer is None or self._writer.closed or self._writer.invalidated:
            self._writer = await self.engine.connect()
        return self._writer

    async def _drop_writer(self) -> None:
        """After a failed command, start the next one on a fresh connection."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                await writer.close()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """Run queries on one connection, in one consistent transaction."""
        async with self._translate_errors(), self.engine.connect() as conn:
            yield conn

    async def ping(self) -> None:
        """Raise ``Unavailable`` unless the database answers."""
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._checkpointing is not None:
            await self._checkpointing
        await self._drop_writer()
        await self.engine.dispose()

    @staticmethod
    @contextlib.asynccontextmanager
    async def _translate_errors() -> AsyncIterator[None]:
        try:
            yield
        except (OperationalError, InterfaceError, OSError, ConnectionError) as exc:
            raise Unavailable("The database is unavailable.") from exc
        except DBAPIError as exc:
            if exc.connection_invalidated:
                raise Unavailable("The database is unavailable.") from exc
            raise
