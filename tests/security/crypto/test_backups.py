"""Encrypted backups: the restore drill, and refusal of tampered, truncated, reordered or
wrong-key backups (which restore nothing)."""

from __future__ import annotations

import datetime as dt
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select

from bastion.app import key_source
from bastion.security.crypto import backup, backups
from bastion.security.crypto.keyring import LocalKeyring, MasterKey
from bastion.store import snapshot
from bastion.store.db import create_engine
from bastion.store.tables import metadata
from tests.conftest import Databases
from tests.support.cli import bastion
from tests.support.operators import execute_sql
from tests.support.raw import raw_bytes, settle_search_index
from tests.support.server import ServerThread
from tests.support.tenants import Tenant

pytestmark = pytest.mark.slow

SECRETS = ["backup secret: the moon is cheese", "carol@example.net"]


async def table_rows(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary-key order."""
    engine = create_engine(url)
    rows: dict[str, list[tuple[Any, ...]]] = {}
    try:
        async with engine.connect() as conn:
            for table in metadata.sorted_tables:
                query = select(table).order_by(*table.primary_key.columns)
                rows[table.name] = [tuple(r) for r in await conn.execute(query)]
    finally:
        await engine.dispose()
    return rows


async def _fill(tenant: Tenant) -> None:
    carol = await tenant.user("carol", display_name="Carol carol@example.net")
    dan = await tenant.user("dan")
    channel = await tenant.channel(carol, [dan], name="drill")
    for text in [*SECRETS, "x" * 3000]:
        await tenant.send(carol, str(channel["id"]), text)


def _create(server: ServerThread, directory: Path, chunk: int = 4096) -> backups.BackupInfo:
    return backups.create(
        server.settings.database_url,
        key_source(server.settings),
        directory,
        now=dt.datetime.now(dt.UTC),
        chunk_bytes=chunk,
        keep=3,
    )


async def test_restore_drill(
    server: ServerThread,
    tenant: Tenant,
    databases: Databases,
    tmp_path: Path,
) -> None:
    """create → restore into a fresh database → every row of every table identical; the
    backup and the restored files hold no plaintext."""
    await _fill(tenant)
    settle_search_index(server)  # the database at rest: no terms filed after `before`
    before = await table_rows(server.settings.database_url)
    info = _create(server, tmp_path / "backups")
    for secret in SECRETS:
        assert secret.encode() not in info.path.read_bytes()
    assert info.path.stat().st_mode & 0o777 == 0o600
    backups.verify(info.path, key_source(server.settings))
    target = databases.new()
    backups.restore(info.path, key_source(server.settings), target)
    after = await table_rows(target)
    assert after == before
    assert sum(len(rows) for rows in after.values()) > 0
    restored = raw_bytes(target, tmp_path)
    for secret in SECRETS:
        assert secret.encode() not in restored


def _chunks(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """The offset where chunks start and each chunk's (start, end)."""
    (size,) = struct.unpack(">I", data[len(backup.MAGIC) : len(backup.MAGIC) + 4])
    offset = len(backup.MAGIC) + 4 + size + 28
    spans, position = [], offset
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        spans.append((position, position + 4 + length))
        position += 4 + length
    return offset, spans


def _flip(data: bytes, spans: list[tuple[int, int]]) -> bytes:
    middle = (spans[1][0] + spans[1][1]) // 2
    return data[:middle] + bytes([data[middle] ^ 1]) + data[middle + 1 :]


def _reorder(data: bytes, spans: list[tuple[int, int]]) -> bytes:
    (a0, a1), (b0, b1) = spans[0], spans[1]
    return data[:a0] + data[b0:b1] + data[a0:a1] + data[b1:]


Damage = Callable[[bytes, list[tuple[int, int]]], bytes]
DAMAGE: dict[str, Damage] = {
    "flip": _flip,
    "truncate": lambda data, spans: data[: spans[-1][0]],
    "cut-mid-chunk": lambda data, spans: data[: spans[1][0] + 10],
    "reorder": _reorder,
    "drop": lambda data, spans: data[: spans[1][0]] + data[spans[1][1] :],
    "header": lambda data, _spans: data.replace(b'"source": "', b'"source": "x', 1),
    "append": lambda data, spans: data + data[spans[0][0] : spans[0][1]],
}


def _tampered(data: bytes, how: str) -> bytes:
    _offset, spans = _chunks(data)
    assert len(spans) >= 3
    return DAMAGE[how](data, spans)


@pytest.mark.parametrize(
    "how", ["flip", "truncate", "cut-mid-chunk", "reorder", "drop", "header", "append"]
)
async def test_damaged_backup_is_refused_and_restores_nothing(
    server: ServerThread, tenant: Tenant, databases: Databases, tmp_path: Path, how: str
) -> None:
    """Any change to the file is detected; the target stays untouched."""
    await _fill(tenant)
    info = _create(server, tmp_path / "backups")
    damaged = tmp_path / "damaged.bastion-backup"
    damaged.write_bytes(_tampered(info.path.read_bytes(), how))
    ring = key_source(server.settings)
    with pytest.raises(backup.BackupRefused):
        backups.verify(damaged, ring)
    target = databases.new()
    with pytest.raises(backup.BackupRefused):
        backups.restore(damaged, ring, target)
    assert await _is_empty(target)


async def _is_empty(url: str) -> bool:
    if snapshot.backend_of(url) == "sqlite":
        return not snapshot.sqlite_path(url).exists()
    return not any((await table_rows_if_any(url)).values())


async def table_rows_if_any(url: str) -> dict[str, int]:
    """Table names that exist in the target (an empty PostgreSQL database has none)."""
    engine = create_engine(url)
    try:
        async with engine.connect() as conn:
            names = await conn.run_sync(lambda sync: inspect(sync).get_table_names())
    finally:
        await engine.dispose()
    return dict.fromkeys(names, 1)


async def test_wrong_key_is_refused(
    server: ServerThread, tenant: Tenant, databases: Databases, tmp_path: Path
) -> None:
    """A backup opened with another installation's keyring is refused."""
    await _fill(tenant)
    info = _create(server, tmp_path / "backups")
    stranger = LocalKeyring(
        tmp_path / "other" / "keyring.json",
        MasterKey(passphrase=None, raw_key=None, dev_key_file=tmp_path / "other" / "master.key"),
    )
    stranger.create(dt.datetime.now(dt.UTC))
    with pytest.raises(backup.BackupRefused, match="wrong key"):
        backups.verify(info.path, stranger)
    target = databases.new()
    with pytest.raises(backup.BackupRefused):
        backups.restore(info.path, stranger, target)
    assert await _is_empty(target)


def test_retention_keeps_the_newest(server: ServerThread, tmp_path: Path) -> None:
    """Only the newest ``keep`` backups stay."""
    made = [_create(server, tmp_path).path for _ in range(5)]
    assert sorted(tmp_path.glob("*.bastion-backup")) == sorted(made[-3:])


def _truncated_copy(path: Path, copy: Path) -> Path:
    copy.write_bytes(path.read_bytes()[:-5])
    return copy


async def test_backup_commands(
    server: ServerThread, tenant: Tenant, databases: Databases, tmp_path: Path
) -> None:
    """`bastion backup create | verify | restore` from the shell, with progress and exit codes;
    creating and restoring are recorded in the server's audit log."""
    await _fill(tenant)
    created = bastion(server, "backup", "create", "--dir", str(tmp_path / "b"))
    assert created.returncode == 0, created.stderr
    path = Path(created.stdout.strip())
    verified = bastion(server, "backup", "verify", str(path))
    assert verified.returncode == 0, verified.stderr
    assert "verifies" in verified.stdout
    bad = _truncated_copy(path, tmp_path / "bad.bastion-backup")
    refused = bastion(server, "backup", "verify", str(bad))
    assert refused.returncode == 1
    assert "Backup refused" in refused.stderr
    target = databases.new()
    restored = bastion(server, "backup", "restore", str(path), "--to", target)
    assert restored.returncode == 0, restored.stderr
    backup_id = backups.verify(path, key_source(server.settings)).header.backup_id
    (rows,) = execute_sql(
        server.settings.database_url,
        "SELECT action, subject FROM audit_log WHERE resource = :resource ORDER BY seq",
        resource=f"backup:{backup_id}",
    )
    assert [tuple(row) for row in rows] == [
        ("backup.create", "operator"),
        ("backup.restore", "operator"),
    ]
    assert sum(len(r) for r in (await table_rows(target)).values()) > 0
