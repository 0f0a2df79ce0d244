"""Consistent snapshots of the database for backups, and putting one back.

SQLite: the online backup API copies a consistent image while the server keeps
writing. PostgreSQL: ``pg_dump --format=custom`` (one consistent transaction), restored
with ``pg_restore`` into an empty database.
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
from pathlib import Path

from sqlalchemy.engine import make_url


def backend_of(url: str) -> str:
    """``sqlite`` or ``postgresql``."""
    return make_url(url).get_backend_name()


def sqlite_path(url: str) -> Path:
    """The database file of a SQLite URL."""
    database = make_url(url).database
    if not database or database == ":memory:":
        raise ValueError("an in-memory SQLite database cannot be backed up")
    return Path(database)


def libpq_url(url: str) -> str:
    """A SQLAlchemy PostgreSQL URL as libpq (pg_dump, pg_restore) reads it."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def snapshot(url: str, destination: Path) -> None:
    """Write a consistent snapshot of the database at ``url`` to ``destination``."""
    if backend_of(url) == "sqlite":
        source = sqlite3.connect(sqlite_path(url))
        target = sqlite3.connect(destination)
        try:
            with target:
                source.backup(target)
        finally:
            target.close()
            source.close()
        return
    _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(destination), libpq_url(url)])


def restore(snapshot_file: Path, url: str) -> None:
    """Put a snapshot into the (new, empty) database at ``url``."""
    if backend_of(url) == "sqlite":
        target = sqlite_path(url)
        if target.exists():
            raise FileExistsError(f"{target} exists: restore into a fresh location")
        target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.copyfile(snapshot_file, target)
        target.chmod(0o600)
        return
    _run(
        [
            "pg_restore",
            "--no-owner",
            "--exit-on-error",
            "--single-transaction",
            "--dbname",
            libpq_url(url),
            str(snapshot_file),
        ]
    )


def _run(command: list[str]) -> None:
    tool = shutil.which(command[0])
    if tool is None:
        raise FileNotFoundError(f"{command[0]} is not installed")
    completed = subprocess.run(  # noqa: S603 - fixed tool, arguments we built
        [tool, *command[1:]], capture_output=True, text=True, check=False, timeout=3600
    )
    if completed.returncode != 0:
        # The tools' messages name the database, never its data.
        raise RuntimeError(f"{command[0]} failed: {completed.stderr.strip()[-500:]}")
