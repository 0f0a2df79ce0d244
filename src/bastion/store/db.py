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
import ssl
import time
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry

from bastion.core.errors import Unavailable
from bastion.store import sqlite_inline
from bastion.store.group_commit import GroupCommit
from bastion.store.sealing import CIPHER, ColumnCipher

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

# SQLSTATE classes that mean "the database cannot serve us now", not "this statement is
# wrong": connection exception (08), invalid authorization (28), invalid catalog name
# (3D: the database is gone), insufficient resources (53: too many connections, disk
# full) and operator intervention (57P: shutting down, starting up, dropped). Both
# asyncpg and psycopg expose the code as ``sqlstate``; psycopg 2 as ``pgcode``.
_UNAVAILABLE_SQLSTATES = ("08", "28", "3D", "53", "57P")


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
    tls_ca_file: Path | None = None,
) -> AsyncEngine:
    """Create an async engine for ``url``, configured for its backend.

    With ``tls_ca_file`` a PostgreSQL connection is TLS with ``verify-full`` semantics:
    the server's chain must lead to that CA and its name must match the URL's host.
    """
    if make_url(url).get_backend_name() == "sqlite":
        return _sqlite_engine(url, connect_timeout, echo=echo, inline=sqlite_inline)
    connect_args: dict[str, Any] = {"timeout": connect_timeout}
    if tls_ca_file is not None:
        connect_args["ssl"] = verify_full_context(tls_ca_file)
    return create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def verify_full_context(ca_file: Path) -> ssl.SSLContext:
    """A client TLS context that trusts only ``ca_file`` and checks the host name."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = True
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def _sqlite_engine(url: str, timeout: float, *, echo: bool, inline: bool) -> AsyncEngine:
    parsed = make_url(url)
    path = parsed.database
    options: dict[str, Any] = {"echo": echo, "connect_args": {"timeout": timeout}}
    engine = create_async_engine(url, **options)
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if inline:
            # The pool may close a connection from the garbage collector's thread.
            options["connect_args"]["check_same_thread"] = False
            engine = sqlite_inline.inline_engine(engine, parsed, **options)
    event.listen(sqlite_inline.sync_engine_of(engine), "connect", _sqlite_on_connect)
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


@dataclass(slots=True)
class Transaction:
    """One ``write()`` in progress: its connection and scratch space for transaction hooks."""

    conn: AsyncConnection
    data: dict[str, Any] = field(default_factory=dict)


class TransactionHook(Protocol):
    """Runs at the edges of every ``write()``: the audit log commits with the change."""

    async def before_commit(self, tx: Transaction) -> None:
        """Called as the last statement of a transaction; raising rolls it back."""
        ...

    async def after_rollback(self, tx: Transaction) -> None:
        """Called once a transaction has rolled back and the writer is free again."""
        ...


_active: ContextVar[Transaction | None] = ContextVar("bastion_write", default=None)


def active_transaction() -> Transaction | None:
    """The ``write()`` transaction this task is inside, if any."""
    return _active.get()


def _attach(cipher: ColumnCipher) -> Callable[..., None]:
    def on_checkout(_dbapi: Any, record: ConnectionPoolEntry, _proxy: Any) -> None:
        record.info[CIPHER] = cipher

    return on_checkout


class Database:
    """Transactions over one engine; maps driver failures to ``Unavailable``."""

    def __init__(self, engine: AsyncEngine, cipher: ColumnCipher | None = None) -> None:
        self.engine = engine
        self.cipher = cipher
        if cipher is not None:
            # Every connection this Database hands out carries the cipher its repositories
            # seal and open sensitive columns with (``store.sealing``).
            event.listen(sqlite_inline.sync_engine_of(engine), "checkout", _attach(cipher))
        self.is_sqlite = engine.dialect.name == "sqlite"
        self._write_lock = asyncio.Lock()
        # SQLite has one writer at a time anyway: keep its connection instead of checking
        # one out of the pool (and resetting it) for every command. On a SQLite file its
        # commands commit in groups (``store.group_commit``).
        self._writer: AsyncConnection | None = None
        self._group = (
            GroupCommit(self._open_direct, self._after_commit)
            if isinstance(engine, sqlite_inline.InlineEngine)
            else None
        )
        self._path = engine.url.database if self.is_sqlite else None
        self._commits = 0
        self._checkpointing: asyncio.Task[None] | None = None
        self._hooks: list[TransactionHook] = []

    def time_queries(self, observe: Callable[[float], None]) -> None:
        """Call ``observe(seconds)`` after every statement (for the latency histogram)."""
        started: ContextVar[float] = ContextVar("bastion_query_started", default=0.0)

        def before(*_args: Any) -> None:
            started.set(time.perf_counter())

        def after(*_args: Any) -> None:
            observe(time.perf_counter() - started.get())

        event.listen(sqlite_inline.sync_engine_of(self.engine), "before_cursor_execute", before)
        event.listen(sqlite_inline.sync_engine_of(self.engine), "after_cursor_execute", after)

    def pool_status(self) -> tuple[int, int]:
        """The pool's size and how many connections are checked out."""
        pool: Any = sqlite_inline.sync_engine_of(self.engine).pool
        size = pool.size() if hasattr(pool, "size") else 1
        in_use = pool.checkedout() if hasattr(pool, "checkedout") else 0
        return int(size), int(in_use)

    def add_hook(self, hook: TransactionHook) -> None:
        """Run ``hook`` before every commit and after every rollback of ``write()``."""
        self._hooks.append(hook)

    @contextlib.asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """Run one command in one transaction: all of it commits, or none of it."""
        holder: list[Transaction] = []
        try:
            if not self.is_sqlite:
                async with (
                    self._translate_errors(),
                    self._connection(begin=True) as conn,
                    self._hooked(conn, holder),
                ):
                    yield conn
                return
            if self._group is not None:
                async with (
                    self._translate_errors(),
                    self._group.command() as conn,
                    self._hooked(conn, holder),
                ):
                    yield conn
                return
            async with self._write_lock, self._translate_errors():
                conn = await self._writer_connection()
                try:
                    async with conn.begin(), self._hooked(conn, holder):
                        yield conn
                except DBAPIError:
                    await self._drop_writer()
                    raise
            self._after_commit(1)
        except Exception:
            for tx in holder:
                for hook in self._hooks:
                    await hook.after_rollback(tx)
            raise

    @contextlib.asynccontextmanager
    async def _hooked(
        self, conn: AsyncConnection, holder: list[Transaction]
    ) -> AsyncIterator[None]:
        """Mark the transaction active for this task and run the before-commit hooks."""
        tx = Transaction(conn)
        holder.append(tx)
        token = _active.set(tx)
        try:
            yield
            for hook in self._hooks:
                await hook.before_commit(tx)
        finally:
            _active.reset(token)

    def _after_commit(self, commands: int) -> None:
        """Every so many commands, fold the WAL back into the database, off the event loop."""
        self._commits += commands
        running = self._checkpointing is not None and not self._checkpointing.done()
        if self._commits < _CHECKPOINT_EVERY or running or not self._path:
            return
        self._commits = 0
        self._checkpointing = asyncio.create_task(asyncio.to_thread(_checkpoint, self._path))

    async def _writer_connection(self) -> AsyncConnection:
        if self._writer is None or self._writer.closed or self._writer.invalidated:
            self._writer = await self._open()
        return self._writer

    async def _open_direct(self) -> sqlite_inline.DirectConnection:
        """The SQLite writer's connection (the engine's are all direct)."""
        conn = await self._open()
        if not isinstance(conn, sqlite_inline.DirectConnection):
            raise TypeError("the group commit needs a direct SQLite connection")
        return conn

    async def _open(self) -> AsyncConnection:
        """Check a connection out of the pool; failing to get one means unavailable.

        The server refuses a new connection for reasons that say nothing about the
        request (too many connections, the role may not log in, the database is gone or
        starting up): SQLAlchemy reports those as a plain ``DBAPIError``.
        """
        try:
            return await self.engine.connect()
        except DBAPIError as exc:
            raise Unavailable("The database is unavailable.") from exc

    @contextlib.asynccontextmanager
    async def _connection(self, *, begin: bool) -> AsyncIterator[AsyncConnection]:
        """A pooled connection for one block; with ``begin``, inside one transaction."""
        conn = await self._open()
        try:
            if not begin:
                yield conn
                return
            async with conn.begin():
                yield conn
        finally:
            await conn.close()

    async def _drop_writer(self) -> None:
        """After a failed command, start the next one on a fresh connection."""
        writer, self._writer = self._writer, None
        if writer is not None:
            with contextlib.suppress(Exception):
                await writer.close()

    @contextlib.asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """Run queries on one connection, in one consistent transaction."""
        async with self._translate_errors(), self._connection(begin=False) as conn:
            yield conn

    async def ping(self) -> None:
        """Raise ``Unavailable`` unless the database answers."""
        async with self.read() as conn:
            await conn.execute(text("SELECT 1"))

    async def close(self) -> None:
        """Close every pooled connection."""
        if self._checkpointing is not None:
            await self._checkpointing
        if self._group is not None:
            await self._group.close()
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
            if exc.connection_invalidated or _unavailable_state(exc):
                raise Unavailable("The database is unavailable.") from exc
            raise


def _unavailable_state(exc: DBAPIError) -> bool:
    """Whether the driver's SQLSTATE says the server cannot serve us right now."""
    state = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return isinstance(state, str) and state.startswith(_UNAVAILABLE_SQLSTATES)
