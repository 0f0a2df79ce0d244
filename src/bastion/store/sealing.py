"""Sealed columns: what the store needs from encryption at rest, as a ``Protocol``.

Repositories seal a sensitive value just before it is written and open it just after
it is read, naming the exact cell (app, table, column, row id) so the ciphertext is
bound to it, and the key owner (a channel or a user) whose data key seals it. The
cipher itself lives in ``bastion.security.crypto.envelope`` and is handed to the
``Database`` by the composition root; the store never sees a key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

CIPHER = "bastion.cipher"
"""Where ``Database`` puts its cipher in each connection's ``info``."""

SEALED_PREFIX = "e1."
"""Every sealed value starts with this; anything else is legacy plaintext."""

ERASED = "(erased)"
"""What a value reads as once its data key has been destroyed (crypto-shredding)."""


@dataclass(frozen=True, slots=True)
class Cell:
    """The place a sealed value lives; it is the additional authenticated data."""

    app_id: str
    table: str
    column: str
    row_id: str

    def aad(self, key_id: str) -> bytes:
        """The associated data: a value moved to any other cell fails to open."""
        return (
            f"bastion/v1|{self.app_id}|{self.table}|{self.column}|{self.row_id}|{key_id}".encode()
        )


@dataclass(frozen=True, slots=True)
class Owner:
    """Whose data key seals a value: ``("channel", id)`` or ``("user", id)``."""

    kind: str
    id: str


class KeyDestroyed(Exception):
    """The value's data key was destroyed: it can never be read again."""


class ColumnCipher(Protocol):
    """Seals and opens column values with per-owner data keys."""

    async def seal(self, conn: AsyncConnection, cell: Cell, owner: Owner, plaintext: str) -> str:
        """The stored form of ``plaintext`` for ``cell``."""
        ...

    async def open(self, conn: AsyncConnection, cell: Cell, stored: str) -> str:
        """The plaintext of a stored value; raises ``KeyDestroyed`` after shredding and
        ``core.errors.IntegrityFailure`` when the value does not open."""
        ...

    async def terms(
        self, conn: AsyncConnection, app_id: str, channel_id: str, text: str
    ) -> list[str]:
        """Blind-index terms of a message text, keyed per channel."""
        ...

    async def query_terms(
        self, conn: AsyncConnection, app_id: str, channel_id: str, text: str
    ) -> list[str] | None:
        """Terms to look words up by in a channel (None if nothing is indexed there)."""
        ...


def cipher_of(conn: AsyncConnection) -> ColumnCipher:
    """The cipher of the ``Database`` this connection came from (fails closed without one)."""
    cipher: ColumnCipher | None = conn.info.get(CIPHER)
    if cipher is None:
        raise RuntimeError("this connection has no column cipher: open it through Database")
    return cipher


async def seal(conn: AsyncConnection, cell: Cell, owner: Owner, plaintext: str) -> str:
    """Seal a value for ``cell`` with ``owner``'s data key."""
    return await cipher_of(conn).seal(conn, cell, owner, plaintext)


async def open_value(conn: AsyncConnection, cell: Cell, stored: str) -> str:
    """Open a stored value; a shredded one reads as ``ERASED``."""
    if not stored.startswith(SEALED_PREFIX):
        return stored
    try:
        return await cipher_of(conn).open(conn, cell, stored)
    except KeyDestroyed:
        return ERASED


def key_id_of(stored: str) -> str | None:
    """The data key id a stored value names (None for plaintext)."""
    if not stored.startswith(SEALED_PREFIX):
        return None
    return stored[len(SEALED_PREFIX) :].split(".", 1)[0]
