"""The audit log's records and checkpoints (the chain logic lives in ``security.audit``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.records import DuplicateKeyError
from bastion.store.sqlite_inline import DirectConnection, PreparedWrite
from bastion.store.tables import audit_chain_head, audit_checkpoints, audit_log

AuditRow = dict[str, Any]
"""One audit record as its column values."""

_INSERT = audit_log.insert()
# Compiled once for SQLite's qmark style: its text and column order serve every path.
_SQLITE_WRITE = PreparedWrite.of(_INSERT)
_SQLITE_INSERT = _SQLITE_WRITE.sql
_COLUMNS = _SQLITE_WRITE.names
# PostgreSQL: one statement, one round trip. The head row moves only if it still ends
# where the records were chained onto; its row lock (held to commit) makes a concurrent
# appender wait, then find the head moved and insert nothing. Columns travel as arrays
# ($5... in ``_COLUMNS`` order, a test holds the two together), so the text (and its
# prepared statement) is the same for one record or a hundred.
_PG_EXTEND = (
    "WITH head AS (UPDATE audit_chain_head SET seq = $1, hash = $2"
    " WHERE id = 1 AND seq = $3 AND hash = $4 RETURNING 1)"
    " INSERT INTO audit_log (seq, at, action, outcome, node, event_seq, app_id, subject,"
    " client_id, roles, ip, user_agent, request_id, resource, reason, details, prev_hash,"
    " hash)"
    " SELECT seq, at, action, outcome, node, event_seq, app_id, subject, client_id, roles,"
    " ip, user_agent, request_id, resource, reason, details, prev_hash, hash"
    " FROM unnest($5::bigint[], $6::text[], $7::text[], $8::text[], $9::text[],"
    " $10::bigint[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[],"
    " $16::text[], $17::text[], $18::text[], $19::text[], $20::text[], $21::text[],"
    " $22::text[])"
    " AS batch(seq, at, action, outcome, node, event_seq, app_id, subject, client_id,"
    " roles, ip, user_agent, request_id, resource, reason, details, prev_hash, hash)"
    " WHERE EXISTS (SELECT 1 FROM head) RETURNING seq"
)
_PG_LOCK_HEAD = "SELECT seq, hash FROM audit_chain_head WHERE id = 1 FOR UPDATE"


@dataclass(frozen=True, slots=True)
class AuditFilter:
    """What an auditor asks for; every field is optional except the tenant scope."""

    app_id: str | None = None
    action: str | None = None
    outcome: str | None = None
    subject: str | None = None
    request_id: str | None = None
    since: str | None = None
    until: str | None = None


class ChainHeadMissing(RuntimeError):
    """The one-row ``audit_chain_head`` table is empty: the log cannot be extended safely."""


async def lock_head(conn: AsyncConnection) -> tuple[int, str]:
    """Where the chain ends, locked until this transaction ends.

    On SQLite a plain SELECT takes no write lock (the driver begins its transaction at
    the first write), so another process could append between the read and the insert.
    A no-op UPDATE ... RETURNING takes the database's single write lock and reads the
    head in one statement.
    """
    if conn.dialect.name == "postgresql":
        result = await conn.exec_driver_sql(_PG_LOCK_HEAD)
    else:
        head = audit_chain_head.c
        result = await conn.execute(
            update(audit_chain_head)
            .where(head.id == 1)
            .values(seq=head.seq)
            .returning(head.seq, head.hash)
        )
    row = result.first()
    if row is None:
        raise ChainHeadMissing(audit_chain_head.name)
    return int(row.seq), str(row.hash)


async def extend_chain(
    conn: AsyncConnection, rows: Sequence[Mapping[str, Any]], head: tuple[int, str]
) -> bool:
    """Append records chained onto ``head``; False (nothing written) if the chain moved on.

    On PostgreSQL the head is checked and moved in the inserting statement. On SQLite,
    whose single writer appends, a ``seq`` already taken (another process appended)
    means the chain moved; the transaction stays usable after that.
    """
    if conn.dialect.name != "postgresql":
        try:
            await insert_records(conn, rows)
        except DuplicateKeyError:
            return False
        return True
    columns = [[row[name] for row in rows] for name in _COLUMNS]
    last = rows[-1]
    result = await conn.exec_driver_sql(
        _PG_EXTEND, (last["seq"], last["hash"], head[0], head[1], *columns)
    )
    return len(result.all()) == len(rows)


async def chain_head(conn: AsyncConnection) -> tuple[int, str] | None:
    """The newest record's sequence number and hash, or None for an empty log."""
    row = (
        await conn.execute(
            select(audit_log.c.seq, audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)
        )
    ).first()
    return None if row is None else (int(row.seq), str(row.hash))


async def insert_records(conn: AsyncConnection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Append records (already numbered and hashed); a taken ``seq`` raises ``DuplicateKeyError``.

    On SQLite the transaction stays usable after that error; PostgreSQL aborts it.
    """
    try:
        if isinstance(conn, DirectConnection):
            # The hot path (one append per committed change): straight on the driver.
            await conn.write_rows(_SQLITE_WRITE, rows)
        elif conn.dialect.name == "sqlite":
            values = [tuple(row[name] for name in _COLUMNS) for row in rows]
            await conn.exec_driver_sql(_SQLITE_INSERT, values if len(values) > 1 else values[0])
        else:
            await conn.execute(_INSERT, [dict(row) for row in rows])
    except IntegrityError as exc:
        raise DuplicateKeyError(audit_log.name) from exc


async def records_after(conn: AsyncConnection, after_seq: int, limit: int) -> list[AuditRow]:
    """Up to ``limit`` records after ``after_seq``, in sequence order."""
    result = await conn.execute(
        select(audit_log).where(audit_log.c.seq > after_seq).order_by(audit_log.c.seq).limit(limit)
    )
    return [dict(row) for row in result.mappings()]


async def query(
    conn: AsyncConnection, where: AuditFilter, *, after_seq: int, limit: int
) -> list[AuditRow]:
    """A page of records matching ``where``, oldest first, after the cursor."""
    statement = select(audit_log).where(audit_log.c.seq > after_seq)
    for column, value in (
        (audit_log.c.app_id, where.app_id),
        (audit_log.c.action, where.action),
        (audit_log.c.outcome, where.outcome),
        (audit_log.c.subject, where.subject),
        (audit_log.c.request_id, where.request_id),
    ):
        if value is not None:
            statement = statement.where(column == value)
    if where.since is not None:
        statement = statement.where(audit_log.c.at >= where.since)
    if where.until is not None:
        statement = statement.where(audit_log.c.at < where.until)
    result = await conn.execute(statement.order_by(audit_log.c.seq).limit(limit))
    return [dict(row) for row in result.mappings()]


async def hashes_between(conn: AsyncConnection, first_seq: int, last_seq: int) -> list[str]:
    """The stored hashes of records ``first_seq..last_seq``, in sequence order."""
    result = await conn.execute(
        select(audit_log.c.hash)
        .where(audit_log.c.seq >= first_seq, audit_log.c.seq <= last_seq)
        .order_by(audit_log.c.seq)
    )
    return [str(value) for value in result.scalars()]


async def count(conn: AsyncConnection) -> int:
    """How many records the log holds."""
    return int((await conn.execute(select(func.count()).select_from(audit_log))).scalar_one())


async def last_checkpoint(conn: AsyncConnection) -> AuditRow | None:
    """The newest checkpoint, or None."""
    row = (
        (
            await conn.execute(
                select(audit_checkpoints).order_by(audit_checkpoints.c.number.desc()).limit(1)
            )
        )
        .mappings()
        .first()
    )
    return None if row is None else dict(row)


async def checkpoints(conn: AsyncConnection) -> list[AuditRow]:
    """Every checkpoint, oldest first."""
    result = await conn.execute(select(audit_checkpoints).order_by(audit_checkpoints.c.number))
    return [dict(row) for row in result.mappings()]


async def insert_checkpoint(conn: AsyncConnection, row: Mapping[str, Any]) -> None:
    """Store a signed checkpoint."""
    await conn.execute(audit_checkpoints.insert().values(**row))
