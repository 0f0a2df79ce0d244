"""The ids of shredded data keys, in a private file beside the key source's settings.

The local keyring keeps these inside its sealed file. A Vault Transit key has no room
for them, so with Vault they live here, in ``<data_dir>/keys/shredded.json`` (mode
0600): outside the database, so restoring an old database backup does not bring a
shredded key back into use. The ids are not secret; the file only grows.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from pathlib import Path

from bastion.security.crypto.keyring import write_private


class ShredList:
    """A set of data key ids that must never be unwrapped again."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._ids: frozenset[str] = frozenset()
        self._stamp: int | None = None

    def add(self, key_ids: list[str]) -> None:
        """Remember ``key_ids`` (durably, before returning)."""
        if not key_ids:
            return
        with self._locked():
            ids = self._read() | set(key_ids)
            write_private(self.path, json.dumps({"shredded": sorted(ids)}).encode())

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._read()

    def _read(self) -> frozenset[str]:
        stamp = self.path.stat().st_mtime_ns if self.path.exists() else None
        if stamp != self._stamp:
            raw = json.loads(self.path.read_text(encoding="utf-8")) if stamp is not None else {}
            self._ids, self._stamp = frozenset(raw.get("shredded", [])), stamp
        return self._ids

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        with (self.path.parent / ".shredded.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            yield
