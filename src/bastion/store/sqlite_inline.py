"""SQLite on the event loop: async connections whose statements run directly, synchronously.

SQLAlchemy's asyncio layer runs every statement in a greenlet and hands each driver call
(cursor, execute, fetch, close) to the event loop and back; for aiosqlite each call also
crosses to a worker thread. Both cost several times the SQLite work of a short statement
on a local file in WAL mode. Bastion lets only one transaction write at a time
(``Database.write``), so a statement run inline never waits on a lock this process
holds.

An :class:`InlineEngine` is the async engine of one SQLite file with a second,
synchronous engine (``direct``, the standard library driver) on the same file. Every
connection it hands out is a :class:`DirectConnection`: the asyncio connection API the
repositories use, with ``execute``, ``exec_driver_sql``, transactions and ``close``
calling the synchronous connection directly. Anything else it inherits still goes
through the greenlet bridge, which runs synchronous code as well (migrations use
``run_sync``).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select
from sqlalchemy import create_engine as create_sync_engine
from sqlalchemy.dialects.sqlite import pysqlite
from sqlalchemy.engine import URL, CursorResult, Engine
from sqlalchemy.engine.interfaces import (
    CoreExecuteOptionsParameter,
    _CoreAnyExecuteParams,
    _DBAPIAnyExecuteParams,
)
from sqlalchemy.exc import DBAPIError, InvalidRequestError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncTransaction
from sqlalchemy.sql.base import Executable
from sqlalchemy.sql.dml import UpdateBase

_DIALECT = pysqlite.dialect()


class DirectTransaction(AsyncTransaction):
    """A transaction of a :class:`DirectConnection`: begun, committed and rolled back inline."""

    __slots__ = ()

    async def start(self, is_ctxmanager: bool = False) -> DirectTransaction:
        """Begin the transaction (a savepoint when nested)."""
        sync = self.connection._proxied
        began = sync.begin_nested() if self.nested else sync.begin()
        self.sync_transaction = self._assign_proxied(began)
        if is_ctxmanager:
            began.__enter__()
        return self

    async def commit(self) -> None:
        """Commit the transaction."""
        self._proxied.commit()

    async def rollback(self) -> None:
        """Roll the transaction back."""
        self._proxied.rollback()

    async def close(self) -> None:
        """End the transaction (rolling it back unless it was committed)."""
        self._proxied.close()

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        self._proxied.__exit__(type_, value, traceback)


class DirectConnection(AsyncConnection):
    """An asyncio connection whose statements run on the event loop, without a greenlet."""

    __slots__ = ()

    async def start(self, is_ctxmanager: bool = False) -> DirectConnection:
        """Open the synchronous connection on the engine's SQLite file."""
        if self.sync_connection is not None:
            raise InvalidRequestError("connection is already started")
        self.sync_connection = self._assign_proxied(sync_engine_of(self.engine).connect())
        return self

    async def execute(
        self,
        statement: Executable,
        parameters: _CoreAnyExecuteParams | None = None,
        *,
        execution_options: CoreExecuteOptionsParameter | None = None,
    ) -> CursorResult[Any]:
        """Run a statement construct."""
        return self._proxied.execute(statement, parameters, execution_options=execution_options)

    async def exec_driver_sql(
        self,
        statement: str,
        parameters: _DBAPIAnyExecuteParams | None = None,
        execution_options: CoreExecuteOptionsParameter | None = None,
    ) -> CursorResult[Any]:
        """Run SQL text with the driver's own parameter style."""
        return self._proxied.exec_driver_sql(statement, parameters, execution_options)

    def begin(self) -> AsyncTransaction:
        """A transaction, begun when entered or awaited."""
        return DirectTransaction(self)

    def begin_nested(self) -> AsyncTransaction:
        """A savepoint, begun when entered or awaited."""
        return DirectTransaction(self, nested=True)

    async def commit(self) -> None:
        """Commit the transaction in progress."""
        self._proxied.commit()

    async def rollback(self) -> None:
        """Roll the transaction in progress back."""
        self._proxied.rollback()

    async def close(self) -> None:
        """Return the connection to the pool."""
        self._proxied.close()

    async def fetch_rows(self, query: Prepared, parameters: Mapping[str, Any]) -> list[list[Any]]:
        """Run a prepared query on the driver connection itself; its rows, values decoded.

        For the hottest queries: no statement cache lookup, no result objects. Values
        come back as SQLAlchemy would give them (the columns' own result processors),
        driver errors as SQLAlchemy's exceptions, and the statement-timing events fire.
        """
        values = tuple(parameters[name] for name in query.names)
        rows, _ = self._on_driver(query.sql, values, many=False)
        return [query.decode(row) for row in rows]

    async def write_rows(self, statement: PreparedWrite, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run a prepared INSERT or UPDATE on the driver connection once per row (one
        ``executemany`` for several); the row id of the last row inserted.

        Values are bound through the columns' own bind processors; errors and timing go
        through SQLAlchemy as for ``fetch_rows``.
        """
        values = [statement.encode(row) for row in rows]
        many = len(values) > 1
        _, last_id = self._on_driver(statement.sql, values if many else values[0], many=many)
        return last_id

    def _on_driver(self, sql: str, parameters: Any, *, many: bool) -> tuple[list[Any], int]:
        """Run ``sql`` on the driver connection, between SQLAlchemy's statement events
        and with its error types; the rows it returned and the last row id."""
        conn = self._proxied
        driver = conn.connection.driver_connection
        if driver is None:
            raise InvalidRequestError("the connection is closed")
        cursor = driver.cursor()
        try:
            conn.dispatch.before_cursor_execute(conn, cursor, sql, parameters, None, many)
            try:
                if many:
                    cursor.executemany(sql, parameters)
                else:
                    cursor.execute(sql, parameters)
                rows = cursor.fetchall()
            except sqlite3.Error as exc:
                raise DBAPIError.instance(
                    sql, parameters, exc, sqlite3.Error, dialect=conn.dialect
                ) from exc
            conn.dispatch.after_cursor_execute(conn, cursor, sql, parameters, None, many)
            return rows, int(cursor.lastrowid or 0)
        finally:
            cursor.close()


@dataclass(frozen=True, slots=True)
class Prepared:
    """A query compiled once for SQLite: its text, its parameter names in order, and the
    result processors of its columns (None where a value needs none)."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]

    @classmethod
    def of(cls, statement: Select[Any]) -> Prepared:
        """Compile ``statement`` for SQLite."""
        compiled = statement.compile(dialect=_DIALECT)
        processors = tuple(
            column.type.dialect_impl(_DIALECT).result_processor(_DIALECT, None)
            for column in statement.selected_columns
        )
        return cls(str(compiled), tuple(compiled.positiontup or ()), processors)

    def decode(self, row: Sequence[Any]) -> list[Any]:
        """A driver row's values as the columns' types give them."""
        return _converted(row, self.processors)


@dataclass(frozen=True, slots=True)
class PreparedWrite:
    """An INSERT or UPDATE compiled once for SQLite: its text, its parameter names in
    order and their bind processors (None where a value needs none)."""

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    plain: bool = False
    """No value needs converting (the indexer's rows of terms, say)."""

    @classmethod
    def of(cls, statement: UpdateBase, keys: Sequence[str] | None = None) -> PreparedWrite:
        """Compile ``statement`` for SQLite, for values of the columns ``keys`` (an
        INSERT's), or of its own bound parameters."""
        compiled = statement.compile(dialect=_DIALECT, column_keys=list(keys) if keys else None)
        names = tuple(compiled.positiontup or ())
        processors = tuple(
            compiled.binds[name].type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
            for name in names
        )
        return cls(str(compiled), names, processors, plain=not any(processors))

    def encode(self, values: Mapping[str, Any]) -> list[Any]:
        """A row's values in parameter order, as the driver takes them."""
        row = [values[name] for name in self.names]
        return row if self.plain else _converted(row, self.processors)


def _converted(
    values: Sequence[Any], processors: tuple[Callable[[Any], Any] | None, ...]
) -> list[Any]:
    """Each value through its processor (unchanged where there is none)."""
    return [
        value if process is None else process(value)
        for value, process in zip(values, processors, strict=True)
    ]


class InlineEngine(AsyncEngine):
    """The async engine of a SQLite file; its connections run on ``direct``."""

    __slots__ = ("direct",)
    _connection_cls = DirectConnection

    def __init__(self, engine: AsyncEngine, direct: Engine) -> None:
        super().__init__(engine.sync_engine)
        self.direct = direct

    async def dispose(self, close: bool = True) -> None:
        """Close the pooled connections of both engines."""
        self.direct.dispose(close)
        await super().dispose(close)


def sync_engine_of(engine: AsyncEngine) -> Engine:
    """The synchronous engine ``engine``'s connections run on (the target for events)."""
    return engine.direct if isinstance(engine, InlineEngine) else engine.sync_engine


def inline_engine(engine: AsyncEngine, url: URL, **options: Any) -> InlineEngine:
    """``engine`` with a synchronous engine on the same SQLite file (``url``) under it.

    Its pool never makes a caller wait: a wait would block the event loop, so a
    connection beyond the pool's size is opened (and closed again) instead.
    """
    direct = create_sync_engine(url.set(drivername="sqlite+pysqlite"), max_overflow=-1, **options)
    return InlineEngine(engine, direct)
