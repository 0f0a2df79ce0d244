"""Group commit for SQLite: commands that arrive together share one transaction.

SQLite has one writer, and each commit writes the pages it changed to the WAL. Commands
that reach the writer in the same turn of the event loop mostly change the same pages
(the last page of the messages table and of its indexes, the audit log's), so committing
them together writes those pages once instead of once per command.

Each command still runs alone and atomically: it runs inside a savepoint of the open
transaction, which it releases when it succeeds and rolls back when it fails, leaving
the others untouched. The transaction is committed by a task that runs once the commands
queued in this turn have run; a command's ``write()`` returns only when the transaction
holding it has committed, so nothing is acknowledged before it is durable. If the commit
itself fails (a full disk, an I/O error), every command of the group fails with
``Unavailable`` and none of them wrote anything.

The writer's ``BEGIN IMMEDIATE`` takes SQLite's write lock for the group: another process
writing the same file waits for the commit (``busy_timeout``), as it waited for a
single command before.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from bastion.core.errors import Unavailable
from bastion.store.sqlite_inline import DirectConnection

_SAVEPOINT = "SAVEPOINT bastion_command"
_RELEASE = "RELEASE bastion_command"
_ROLLBACK_TO = "ROLLBACK TO bastion_command"


class _Group:
    """The commands of one transaction, each waiting for its commit."""

    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: list[asyncio.Future[None]] = []

    def settle(self, error: BaseException | None) -> None:
        """Wake every command of the group: committed, or failed with ``error``."""
        for waiter in self.waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)


class GroupCommit:
    """One SQLite writer connection whose commands commit in groups."""

    def __init__(
        self,
        connect: Callable[[], Awaitable[DirectConnection]],
        on_commit: Callable[[int], None],
    ) -> None:
        """``connect`` opens the writer connection; ``on_commit(n)`` runs after each
        commit of ``n`` commands."""
        self._connect = connect
        self._on_commit = on_commit
        self._lock = asyncio.Lock()
        self._conn: DirectConnection | None = None
        self._group: _Group | None = None
        self._committing: asyncio.Task[None] | None = None

    @contextlib.asynccontextmanager
    async def command(self) -> AsyncIterator[DirectConnection]:
        """Run one command in a savepoint of the group's transaction; return once it is
        committed (or raise what made it fail)."""
        waiter = asyncio.get_running_loop().create_future()
        async with self._lock:
            conn = await self._connection()
            driver = _driver(conn)
            group = self._begin(driver)
            _run(driver, _SAVEPOINT)
            try:
                yield conn
            except BaseException:
                await self._undo(driver, group)
                raise
            _run(driver, _RELEASE)
            group.waiters.append(waiter)
        await waiter

    async def close(self) -> None:
        """Commit what is pending, then close the writer connection."""
        if self._committing is not None:
            await self._committing
        async with self._lock:
            await self._drop()

    async def _connection(self) -> DirectConnection:
        conn = self._conn
        if conn is None or conn.closed or conn.invalidated:
            self._group = None
            conn = self._conn = await self._connect()
        return conn

    def _begin(self, driver: sqlite3.Connection) -> _Group:
        """The open group, or a new transaction and the task that will commit it."""
        if self._group is not None:
            return self._group
        if driver.in_transaction:
            # Left open by a statement outside any group (never expected): start clean.
            driver.rollback()
        _run(driver, "BEGIN IMMEDIATE")
        group = self._group = _Group()
        self._committing = asyncio.get_running_loop().create_task(self._commit(group))
        return group

    async def _commit(self, group: _Group) -> None:
        """Commit ``group`` once the commands already queued have run."""
        async with self._lock:
            conn = self._conn
            if self._group is not group or conn is None:
                return  # the group failed and was settled already
            self._group = None
            try:
                _driver(conn).commit()
            except (sqlite3.Error, Unavailable) as exc:
                await self._drop()
                group.settle(_unavailable(exc))
                return
        group.settle(None)
        self._on_commit(len(group.waiters))

    async def _undo(self, driver: sqlite3.Connection, group: _Group) -> None:
        """Roll a failed command back to its savepoint; if SQLite already rolled the whole
        transaction back (it does on some errors), fail the group with it."""
        error: BaseException = sqlite3.OperationalError("the transaction was rolled back")
        if driver.in_transaction:
            try:
                driver.execute(_ROLLBACK_TO)
                driver.execute(_RELEASE)
            except sqlite3.Error as exc:
                error = exc
            else:
                return
        self._group = None
        await self._drop()
        group.settle(_unavailable(error))

    async def _drop(self) -> None:
        """Close the writer connection (rolling back what it holds); the next command
        opens a fresh one."""
        conn, self._conn = self._conn, None
        self._group = None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


def _driver(conn: DirectConnection) -> sqlite3.Connection:
    """The standard library connection under ``conn``."""
    driver: Any = (
        conn.sync_connection.connection.driver_connection if conn.sync_connection else None
    )
    if not isinstance(driver, sqlite3.Connection):
        raise Unavailable("The database is unavailable.")
    return driver


def _run(driver: sqlite3.Connection, sql: str) -> None:
    """Run a transaction-control statement; failing it means the database is unavailable."""
    try:
        driver.execute(sql)
    except sqlite3.Error as exc:
        raise _unavailable(exc) from exc


def _unavailable(cause: BaseException) -> Unavailable:
    error = Unavailable("The database is unavailable.")
    error.__cause__ = cause
    return error
