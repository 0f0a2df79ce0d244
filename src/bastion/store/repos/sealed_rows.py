"""Every sealed column, scanned and rewritten in batches (key rotation jobs)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from bastion.store.tables import login_credentials, messages, users


@dataclass(frozen=True, slots=True)
class SealedColumn:
    """A column holding sealed values, and which column names the key owner."""

    table: Table
    column: str
    owner_kind: str
    owner_column: str
    id_column: str = "id"

    @property
    def name(self) -> str:
        """``table.column``."""
        return f"{self.table.name}.{self.column}"


SEALED_COLUMNS = (
    SealedColumn(messages, "body", "channel", "channel_id"),
    SealedColumn(users, "display_name", "user", "id"),
    SealedColumn(login_credentials, "totp_secret", "user", "user_id", id_column="user_id"),
)


@dataclass(frozen=True, slots=True)
class SealedRow:
    """One stored value with what is needed to re-seal it."""

    row_id: str
    app_id: str
    owner_id: str
    value: str


@dataclass(frozen=True, slots=True)
class Rewrite:
    """A value to replace: the row, what it held when scanned, and its new form."""

    row_id: str
    old: str
    new: str


async def scan(
    conn: AsyncConnection, column: SealedColumn, after_id: str, limit: int
) -> list[SealedRow]:
    """The next rows (by id) holding a value in ``column``."""
    table = column.table
    value = table.c[column.column]
    row_id = table.c[column.id_column]
    query = (
        select(row_id, table.c.app_id, table.c[column.owner_column], value)
        .where(row_id > after_id, value.is_not(None))
        .order_by(row_id)
        .limit(limit)
    )
    return [SealedRow(*row) for row in await conn.execute(query)]


async def rewrite(conn: AsyncConnection, column: SealedColumn, changes: list[Rewrite]) -> None:
    """Replace each value only if it is still the old one (a concurrent edit wins).

    One statement for the whole batch (``executemany``): the rows of a re-encryption
    batch share a transaction, and a row changed since it was scanned is left alone.
    """
    if not changes:
        return
    table = column.table
    statement = (
        update(table)
        .where(
            table.c[column.id_column] == bindparam("b_id"),
            table.c[column.column] == bindparam("b_old"),
        )
        .values({column.column: bindparam("b_new")})
    )
    await conn.execute(
        statement, [{"b_id": c.row_id, "b_old": c.old, "b_new": c.new} for c in changes]
    )


async def count(conn: AsyncConnection, column: SealedColumn) -> int:
    """How many rows hold a value in ``column`` (for progress bars)."""
    table = column.table
    query = select(func.count()).where(table.c[column.column].is_not(None))
    return int((await conn.execute(query)).scalar_one())
