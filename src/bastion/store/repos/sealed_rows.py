"""Every sealed column, scanned and rewritten in batches (key rotation jobs)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Table, func, select, update
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


async def rewrite(
    conn: AsyncConnection, column: SealedColumn, row_id: str, old: str, new: str
) -> bool:
    """Replace a value only if it is still ``old`` (a concurrent edit wins); tell if done."""
    table = column.table
    result = await conn.execute(
        update(table)
        .where(table.c[column.id_column] == row_id, table.c[column.column] == old)
        .values({column.column: new})
    )
    return bool(result.rowcount)


async def count(conn: AsyncConnection, column: SealedColumn) -> int:
    """How many rows hold a value in ``column`` (for progress bars)."""
    table = column.table
    query = select(func.count()).where(table.c[column.column].is_not(None))
    return int((await conn.execute(query)).scalar_one())
