"""Engine set-up: SQLite's journal mode."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import text

from bastion.app import database
from bastion.core.settings import Settings


async def test_the_default_sqlite_database_is_in_wal_mode(tmp_path: Path) -> None:
    """With no database URL configured, the database file under data_dir journals to a WAL
    (readers never wait for the writer)."""
    settings = Settings(server={"data_dir": tmp_path})
    assert settings.database_url.endswith(f"{tmp_path}/bastion.db")
    db = database(settings)
    try:
        async with db.read() as read:
            read_mode = (await read.execute(text("PRAGMA journal_mode"))).scalar_one()
        async with db.write() as write:
            write_mode = (await write.execute(text("PRAGMA journal_mode"))).scalar_one()
    finally:
        await db.close()
    assert (read_mode, write_mode) == ("wal", "wal")
    assert (tmp_path / "bastion.db").exists()
