"""Encrypted backups: create (snapshot → compress → seal → file), verify, restore, retention."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from bastion.core.ids import Kind, new_id
from bastion.security.crypto import backup
from bastion.security.crypto.errors import KeyUnavailable
from bastion.security.crypto.keysource import ManagedKeySource
from bastion.store import snapshot

SUFFIX = ".bastion-backup"
_READ = 1_048_576

Advance = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class BackupInfo:
    """A backup file and what its header says."""

    path: Path
    header: backup.BackupHeader
    size: int


def _pieces(path: Path) -> Iterator[bytes]:
    with path.open("rb") as handle:
        while piece := handle.read(_READ):
            yield piece


def create(
    url: str,
    keys: ManagedKeySource,
    directory: Path,
    *,
    now: dt.datetime,
    chunk_bytes: int,
    keep: int,
    advance: Callable[[int, int], None] | None = None,
) -> BackupInfo:
    """Snapshot the database and write it encrypted; then keep only the newest ``keep``."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    backup_id = new_id(Kind.BACKUP)
    backup_key = keys.new_backup_key(backup_id)
    header = backup.BackupHeader(
        backup_id=backup_id,
        created_at=now.isoformat(),
        source=snapshot.backend_of(url),
        key_version=backup_key.version,
        chunk_bytes=chunk_bytes,
        wrapped_key=backup_key.wrapped,
    )
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    final = directory / f"bastion-{stamp}-{header.backup_id}{SUFFIX}"
    with tempfile.TemporaryDirectory(prefix="bastion-snapshot-") as scratch:
        image = Path(scratch) / "snapshot"
        snapshot.snapshot(url, image)
        total = image.stat().st_size
        partial = final.with_suffix(".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            backup.write(
                out,
                header,
                backup_key.key,
                _pieces(image),
                None if advance is None else (lambda n: advance(n, total)),
            )
            out.flush()
            os.fsync(out.fileno())
        os.replace(partial, final)
    prune(directory, keep)
    return BackupInfo(final, header, final.stat().st_size)


def prune(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest ``keep`` backups in ``directory``; return what was removed."""
    found = sorted(directory.glob(f"bastion-*{SUFFIX}"))
    removed = found[:-keep] if keep else found
    for path in removed:
        path.unlink()
    return removed


def _key_for(keys: ManagedKeySource) -> Callable[[backup.BackupHeader], bytes]:
    def key(header: backup.BackupHeader) -> bytes:
        try:
            return keys.open_backup_key(header.key_version, header.wrapped_key, header.backup_id)
        except KeyUnavailable as exc:
            raise backup.BackupRefused(
                f"backup key version {header.key_version} cannot be opened: {exc}"
            ) from None

    return key


def verify(path: Path, keys: ManagedKeySource, advance: Advance | None = None) -> BackupInfo:
    """Read the whole backup, checking every chunk; raise ``BackupRefused`` on any problem."""
    with path.open("rb") as stream:
        header, _ = backup.read_header(stream)
        stream.seek(0)
        # Reading is the check: drain every chunk without keeping any.
        deque(backup.read(stream, _key_for(keys), advance), maxlen=0)
    return BackupInfo(path, header, path.stat().st_size)


def restore(
    path: Path, keys: ManagedKeySource, url: str, advance: Advance | None = None
) -> BackupInfo:
    """Verify and decrypt the backup to a scratch file, then load it into ``url``.

    Nothing is written to the target unless the whole backup verified.
    """
    with tempfile.TemporaryDirectory(prefix="bastion-restore-") as scratch:
        image = Path(scratch) / "snapshot"
        with path.open("rb") as stream, image.open("wb") as out:
            header, _ = backup.read_header(stream)
            stream.seek(0)
            for piece in backup.read(stream, _key_for(keys), advance):
                out.write(piece)
        if header.source != snapshot.backend_of(url):
            raise backup.BackupRefused(
                f"this is a {header.source} backup; restore it into a {header.source} database"
            )
        snapshot.restore(image, url)
    return BackupInfo(path, header, path.stat().st_size)
