"""Group commit for SQLite: commands that arrive together share one transaction.

SQLite has one writer, and each commit writes the pages it changed to the WAL. Commands
that reach the writer in the same turn of the event loop mostly change the same pages
(the last page of the messages table and of its indexes, the audit log's), so committing
them together writes those pages once instead of once per command.

Each command still runs alone and atomically: it runs inside a savepoint of the open
transaction, which it releases when it succeeds and rolls back when it fails, leaving
the others untouched. The transaction is committed by a task that runs once the commands
queued in this turn have run. A command's ``write()`` returns (or raises) only when the
transaction it ran in has ended, so nothing is acknowledged before it is durable, and a
command that failed on a row another command of its group wrote (a unique key, say)
can read that row once it raises. If the transaction is lost (the commit fails, or
SQLite rolls the whole transaction back after an I/O error, a full disk or an
interrupt), every command of the group that had succeeded fails with ``Unavailable``,
and none of them wrote anything.

A command cancelled while it waits for the commit is committed all the same, as it
would be if the cancellation came just after a commit of its own.

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

from sqlalchemy.exc import SQLAlchemyError

from bastion.core.errors import Unavailable
from bastion.store.sqlite_inline import DirectConnection

_SAVEPOINT = "SAVEPOINT bastion_command"
_RELEASE = "RELEASE bastion_command"
_ROLLBACK_TO = "ROLLBACK TO bastion_command"


class _Group:
    """The commands of one transaction, each waiting for it to end."""

    __slots__ = ("waiters",)

    def __init__(self) -> None:
        self.waiters: list[asyncio.Future[None]] = []

    def settle(self, error: BaseException | None) -> None:
        """Wake every command of the group: committed, or lost because of ``error``."""
        for waiter in self.waiters:
            if waiter.done():
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(_unavailable(error))


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
        """Run one command in a savepoint of the group's transaction; return once that
        transaction is committed, or raise what made the command (or it) fail."""
        waiter = asyncio.get_running_loop().create_future()
        failure: BaseException | None = None
        async with self._lock:
            conn = await self._connection()
            driver = _driver(conn)
            group = self._begin(driver)
            _run(driver, _SAVEPOINT)
            group.waiters.append(waiter)
            try:
                yield conn
            except BaseException as exc:  # noqa: BLE001 - raised again below, after the group
                failure = exc
                await self._undo(driver)
            else:
                await self._release(driver)
        if failure is None:
            await waiter
            return
        if isinstance(failure, Exception):
            # What failed this command may be another command's uncommitted row: let the
            # group end before the caller looks for it. Its outcome is not this command's.
            with contextlib.suppress(Exception):
                await waiter
        else:
            waiter.cancel()
        raise failure

    async def close(self) -> None:
        """Commit what is pending, then close the writer connection."""
        while self._committing is not None and not self._committing.done():
            await asyncio.wait({self._committing})
        async with self._lock:
            await self._drop(sqlite3.OperationalError("the database is closing"))

    async def _connection(self) -> DirectConnection:
        """The writer connection; a fresh one when it was lost, or when its open group
        can no longer be committed (its commit task is gone)."""
        conn = self._conn
        orphaned = self._group is not None and (self._committing is None or self._committing.done())
        if conn is None or conn.closed or conn.invalidated or orphaned:
            await self._drop(sqlite3.OperationalError("the writer connection was lost"))
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
        committing = asyncio.get_running_loop().create_task(self._commit(group))
        committing.add_done_callback(lambda task: _abandoned(task, group))
        self._committing = committing
        return group

    async def _commit(self, group: _Group) -> None:
        """Commit ``group`` once the commands already queued have run."""
        async with self._lock:
            if self._group is not group or self._conn is None:
                return  # the group was lost and settled already
            try:
                driver = _driver(self._conn)
                _require_transaction(driver)
                driver.commit()
            except Exception as exc:  # noqa: BLE001 - whatever it was, the group is lost
                await self._drop(exc)
                return
            self._group = None
        group.settle(None)
        self._on_commit(len(group.waiters))

    async def _release(self, driver: sqlite3.Connection) -> None:
        """End a successful command's savepoint; if SQLite rolled the whole transaction
        back under it (a caught I/O error, say), the group is lost."""
        try:
            _require_transaction(driver)
            driver.execute(_RELEASE)
        except sqlite3.Error as exc:
            await self._drop(exc)

    async def _undo(self, driver: sqlite3.Connection) -> None:
        """Roll a failed command back to its savepoint; if SQLite already rolled the whole
        transaction back (it does on some errors), the group is lost."""
        try:
            _require_transaction(driver)
            driver.execute(_ROLLBACK_TO)
            driver.execute(_RELEASE)
        except sqlite3.Error as exc:
            await self._drop(exc)

    async def _drop(self, error: BaseException) -> None:
        """Close the writer connection (rolling back what it holds) and fail the open
        group's commands with ``error``; the next command opens a fresh connection."""
        conn, self._conn = self._conn, None
        group, self._group = self._group, None
        if group is not None:
            group.settle(error)
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()


def _abandoned(task: asyncio.Task[None], group: _Group) -> None:
    """When the commit task ended without committing (cancelled as the event loop
    closes, perhaps before it ever ran), its group's commands fail rather than wait
    forever; the next command finds the group orphaned and rolls it back."""
    if task.cancelled() or task.exception() is not None:
        group.settle(sqlite3.OperationalError("the commit did not run"))


def _driver(conn: DirectConnection) -> sqlite3.Connection:
    """The standard library connection under ``conn``."""
    try:
        sync = conn.sync_connection
        driver: Any = sync.connection.driver_connection if sync is not None else None
    except SQLAlchemyError as exc:  # closed, or invalidated after a lost connection
        raise _unavailable(exc) from exc
    if not isinstance(driver, sqlite3.Connection):
        raise Unavailable("The database is unavailable.")
    return driver


def _require_transaction(driver: sqlite3.Connection) -> None:
    """Raise unless the group's transaction is still open (SQLite ends it by itself after
    some errors: an I/O error, a full disk, an interrupt)."""
    if not driver.in_transaction:
        raise sqlite3.OperationalError("the transaction was rolled back")


def _run(driver: sqlite3.Connection, sql: str) -> None:
    """Run a transaction-control statement; failing it means the database is unavailable."""
    try:
        driver.execute(sql)
    except sqlite3.Error as exc:
        raise _unavailable(exc) from exc


def _unavailable(cause: BaseException) -> Unavailable:
    """A fresh ``Unavailable`` caused by ``cause`` (one per caller: tracebacks differ)."""
    error = Unavailable("The database is unavailable.")
    error.__cause__ = cause
    return error
