"""An aiosqlite-compatible connection that runs SQLite calls on the event loop itself.

aiosqlite hands every call (execute, fetch, commit) to a worker thread and back; that
hand-off costs several times more than the SQLite work of a short statement. SQLite
calls on a local file in WAL mode take microseconds, and Bastion lets only one
transaction write at a time (``Database.write``), so running them inline never waits
on a lock held by this process. SQLAlchemy's ``sqlite+aiosqlite`` dialect drives this
class through its ``async_creator`` hook exactly as it drives aiosqlite.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Sequence
from typing import Any


class InlineCursor:
    """A sqlite3 cursor behind aiosqlite's awaitable cursor interface."""

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        """Column descriptions of the last query."""
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        """Rows changed by the last statement."""
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        """The rowid of the last inserted row."""
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        """Rows fetched by fetchmany() by default."""
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value

    async def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        """Run one statement."""
        self._cursor.execute(sql, parameters or ())
        return self

    async def executemany(self, sql: str, parameters: Iterable[Sequence[Any]]) -> InlineCursor:
        """Run one statement for each parameter set."""
        self._cursor.executemany(sql, parameters)
        return self

    async def fetchone(self) -> Any:
        """The next row, or None."""
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        """Up to ``size`` rows."""
        return self._cursor.fetchmany(size if size is not None else self._cursor.arraysize)

    async def fetchall(self) -> list[Any]:
        """All remaining rows."""
        return self._cursor.fetchall()

    async def close(self) -> None:
        """Close the cursor."""
        self._cursor.close()


class _ImmediateQueue:
    """Stands in for aiosqlite's request queue: runs the request at once."""

    @staticmethod
    def put_nowait(item: tuple[Any, Callable[[], Any]]) -> None:
        future, function = item
        try:
            future.set_result(function())
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting caller
            future.set_exception(exc)


class InlineConnection:
    """A sqlite3 connection behind aiosqlite's awaitable connection interface."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._conn = connection
        self._connection: sqlite3.Connection | None = connection
        self._tx = _ImmediateQueue()

    def cursor(self) -> InlineCursor:
        """A new cursor (entered with ``async with`` by SQLAlchemy)."""
        return InlineCursor(self._conn.cursor())

    @property
    def isolation_level(self) -> str | None:
        """The sqlite3 isolation level."""
        return self._conn.isolation_level

    async def commit(self) -> None:
        """Commit the current transaction."""
        self._conn.commit()

    async def rollback(self) -> None:
        """Roll the current transaction back."""
        self._conn.rollback()

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        """Register an SQL function (SQLAlchemy adds regexp)."""
        self._conn.create_function(*args, **kwargs)

    async def close(self) -> None:
        """Close the connection."""
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        """Close without waiting (SQLAlchemy's terminate)."""
        if self._connection is not None:
            self._connection = None
            self._conn.close()


def creator(path: str, timeout: float) -> Callable[[], Any]:
    """An ``async_creator`` for SQLAlchemy that opens inline connections to ``path``."""

    async def connect() -> InlineConnection:
        # check_same_thread=False: the pool may close a connection from the GC thread.
        return InlineConnection(sqlite3.connect(path, timeout=timeout, check_same_thread=False))

    return connect
