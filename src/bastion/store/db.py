"""Engine and transaction set-up for SQLite (WAL) and PostgreSQL (asyncpg).

One ``Database`` per process, built by the composition root. Commands run in one
``write()`` transaction each, so a failed request never half-writes; queries use
``read()``. SQLite allows one writer at a time, so writes queue on a lock instead of
failing with "database is locked".
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from bastion.core.errors import Unavailable

Connection = AsyncConnection
"""The connection type repositories take; the domain names it without importing SQLAlchemy."""

_SQLITE_PRAGMAS = (
    "PRAGMA journal_mode=WAL",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA busy_timeout=5000",
)


def _sqlite_on_connect(dbapi_connection: Any, _record: ConnectionPoolEntry) -> None:
    cursor = dbapi_connection.cursor()
    for pragma in _SQLITE_PRAGMAS:
        cursor.execute(pragma)
    cursor.close()


def create_engine(
    url: str, *, pool_size: int = 10, connect_timeout: float = 5.0, echo: bool = False
) -> AsyncEngine:
    """Create an async engine for ``url``, configured for its backend."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        engine = create_async_engine(url, echo=echo, connect_args={"timeout": connect_timeout})
        event.listen(engine.sync_engine, "connect", _sqlite_on_connect)
        return engine
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args={"timeout": connect_timeout},
    )


class Database:
    """Transactions over one engine; maps driver failures to ``Unavailable``."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock() if self.is_sqlite else None

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """Run one command in one transaction: all of it commits, or none of it."""
        lock = self._write_lock or contextlib.nullcontext()
        async with lock, self._translate_errors(), self.engine.begin() as conn:
            yield conn

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
