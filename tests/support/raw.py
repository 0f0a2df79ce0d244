"""Raw access to the test database, below the repositories (for tampering and scanning)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

from sqlalchemy import text

from bastion.chat.indexer import SearchIndexer
from bastion.security.crypto.envelope import EnvelopeCipher
from bastion.store import snapshot
from tests.support.server import ServerThread


def cipher(server: ServerThread) -> EnvelopeCipher:
    """The running server's column cipher."""
    found = server.services.db.cipher
    assert isinstance(found, EnvelopeCipher)
    return found


def sql(server: ServerThread, statement: str, **params: Any) -> list[Any]:
    """Run one statement on the server's database (its own loop) and return the rows."""

    async def run() -> list[Any]:
        async with server.services.db.write() as conn:
            result = await conn.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []

    rows = server.run(run())
    cipher(server).forget_all()  # the next read unwraps keys from the database again
    return rows


def settle_search_index(server: ServerThread) -> None:
    """File every pending search term, so the background indexer has nothing left to change."""

    async def run() -> int:
        await SearchIndexer(server.services.db, batch=500).drain()
        async with server.services.db.read() as conn:
            query = text("SELECT count(*) FROM messages WHERE pending_terms IS NOT NULL")
            return int((await conn.execute(query)).scalar_one())

    # On PostgreSQL the background indexer may hold some rows while this drain skips them.
    while server.run(run()):
        time.sleep(0.01)


def raw_bytes(url: str, workdir: Path) -> bytes:
    """Everything the database stores, as bytes: SQLite files (+WAL), or a plain pg_dump."""
    if snapshot.backend_of(url) == "sqlite":
        path = snapshot.sqlite_path(url)
        parts = [str(p) for p in (path, path.with_name(path.name + "-wal")) if p.exists()]
        # Read in another process: closing a descriptor of the database file in this one
        # would drop the POSIX locks of the server's SQLite connections (same process).
        return subprocess.run(  # noqa: S603 - cat of our own test database files
            ["/bin/cat", *parts], check=True, capture_output=True, timeout=60
        ).stdout
    dump = workdir / "dump.sql"
    subprocess.run(  # noqa: S603 - pg_dump of our own test database
        ["/usr/bin/pg_dump", "--format=plain", "--file", str(dump), snapshot.libpq_url(url)],
        check=True,
        timeout=120,
    )
    return dump.read_bytes()
