"""Online key rotation: rewrap data keys under the newest KEK, re-encrypt data under fresh
data keys, and retire old KEK versions — all while the server keeps serving.

``rewrap`` touches only the ``data_keys`` table: each DEK is unwrapped with its old KEK
version and wrapped with the newest; values sealed under it are unchanged.

``reencrypt`` is a resumable job (its progress is kept in ``key_jobs``):

1. **keys** — every channel and user whose newest data key predates the job gets a
   fresh one, which becomes the key new writes use;
2. **settle** — wait one data-key cache lifetime, so every server has stopped writing
   with the old keys;
3. **rows** — every sealed value not under its owner's newest key is opened and sealed
   again, in batches, each batch one transaction (a concurrent edit wins: the value is
   only replaced if it is unchanged); legacy plaintext values are sealed too;
4. **retire** — the old data keys are destroyed: no value refers to them any more.

A crash at any point is resumed by running the command again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace

from bastion.core.clock import Clock
from bastion.security.crypto.envelope import EnvelopeCipher, key_aad
from bastion.security.crypto.keysource import ManagedKeySource, call
from bastion.store.db import Connection, Database
from bastion.store.repos import data_keys as repo
from bastion.store.repos import sealed_rows
from bastion.store.sealing import Cell, KeyDestroyed, Owner, key_id_of

Progress = Callable[[str, int, int | None], None]
"""``progress(phase, advanced_by, total)``: called as work is done."""

JOB = "reencrypt"
_START = ""


@dataclass(frozen=True, slots=True)
class RewrapResult:
    """What ``rewrap`` did."""

    rewrapped: int
    version: int


async def rewrap(
    db: Database, keys: ManagedKeySource, *, batch: int = 500, progress: Progress | None = None
) -> RewrapResult:
    """Wrap every live data key under the newest KEK version."""
    version = (await call(keys, keys.status)).primary
    async with db.read() as conn:
        total = await repo.count_below_version(conn, version)
    after, done = _START, 0
    while True:
        async with db.write() as conn:
            records = await repo.keys_to_rewrap(conn, version, after, batch)
            changes = [await _rewrapped(keys, r, r.wrapped) for r in records if r.wrapped]
            await repo.set_wrapped(conn, changes)
        if not records:
            return RewrapResult(done, version)
        after = records[-1].id
        done += len(records)
        if progress is not None:
            progress("rewrap", len(records), total)


async def _rewrapped(
    keys: ManagedKeySource, record: repo.DataKeyRecord, wrapped: str
) -> repo.Rewrapped:
    """The data key of ``record`` (currently ``wrapped``) wrapped under the newest KEK."""
    owner = Owner(record.owner_kind, record.owner_id)
    aad = key_aad(record.app_id, record.id, owner, record.purpose)
    dek = await call(keys, keys.unwrap, record.app_id, record.kek_version, wrapped, aad)
    new_version, rewrapped = await call(keys, keys.wrap, record.app_id, dek, aad)
    return repo.Rewrapped(record.id, new_version, rewrapped)


class Reencryption:
    """The resumable re-encryption job."""

    def __init__(
        self,
        db: Database,
        cipher: EnvelopeCipher,
        clock: Clock,
        *,
        batch: int = 500,
        throttle: float = 0.0,
        progress: Progress | None = None,
    ) -> None:
        self.db = db
        self.cipher = cipher
        self.clock = clock
        self.batch = batch
        self.throttle = throttle
        self.progress = progress
        self._newest_ids: dict[tuple[str, str, str], str | None] = {}

    async def run(self) -> repo.KeyJob:
        """Run (or resume) the job to completion; return its final state."""
        job = await self._job()
        steps = {
            "keys": self._keys,
            "settle": self._settle,
            "rows": self._rows,
            "retire": self._retire,
        }
        while job.state != "done":
            job = await steps[job.phase](job)
        return job

    async def _job(self) -> repo.KeyJob:
        async with self.db.write() as conn:
            job = await repo.get_job(conn, JOB)
            if job is None or job.state == "done":
                now = self.clock.now()
                job = repo.KeyJob(JOB, "running", "keys", _START, "", 0, now, now)
                await repo.save_job(conn, job)
        return job

    async def _save(self, job: repo.KeyJob, **changes: object) -> repo.KeyJob:
        job = replace(job, updated_at=self.clock.now(), **changes)  # type: ignore[arg-type]
        async with self.db.write() as conn:
            await repo.save_job(conn, job)
        return job

    async def _keys(self, job: repo.KeyJob) -> repo.KeyJob:
        for kind in ("channel", "user"):
            while True:
                async with self.db.write() as conn:
                    owners = await repo.owners_with_keys_before(
                        conn, kind, job.started_at, _START, self.batch
                    )
                    for app_id, owner_id in owners:
                        await self.cipher.rotate_owner(conn, app_id, Owner(kind, owner_id))
                if not owners:
                    break
                self._report("keys", len(owners), None)
        return await self._save(job, phase="settle")

    async def _settle(self, job: repo.KeyJob) -> repo.KeyJob:
        # Servers cache the key they write with for at most this long.
        ready = job.updated_at + dt.timedelta(seconds=self.cipher.cache_seconds)
        wait = (ready - self.clock.now()).total_seconds()
        if wait > 0:
            self._report("settle", 0, None)
            await asyncio.sleep(wait)
        self.cipher.forget_all()
        return await self._save(job, phase="rows", position=_encode(0, _START))

    async def _rows(self, job: repo.KeyJob) -> repo.KeyJob:
        total = None
        async with self.db.read() as conn:
            total = sum([await sealed_rows.count(conn, c) for c in sealed_rows.SEALED_COLUMNS])
        column_index, after = _decode(job.position)
        done = job.done
        while column_index < len(sealed_rows.SEALED_COLUMNS):
            column = sealed_rows.SEALED_COLUMNS[column_index]
            async with self.db.write() as conn:
                rows = await sealed_rows.scan(conn, column, after, self.batch)
                changes = [await self._reseal(conn, column, row) for row in rows]
                await sealed_rows.rewrite(conn, column, [c for c in changes if c is not None])
            if rows:
                after = rows[-1].row_id
                done += len(rows)
                self._report("rows", len(rows), total)
            else:
                column_index, after = column_index + 1, _START
            job = await self._save(job, position=_encode(column_index, after), done=done)
            if self.throttle:
                await asyncio.sleep(self.throttle)
        return await self._save(job, phase="retire")

    async def _reseal(
        self, conn: Connection, column: sealed_rows.SealedColumn, row: sealed_rows.SealedRow
    ) -> sealed_rows.Rewrite | None:
        """The row's value sealed under its owner's newest key (None: nothing to do)."""
        owner = Owner(column.owner_kind, row.owner_id)
        cell = Cell(row.app_id, column.table.name, column.column, row.row_id)
        old_id = key_id_of(row.value)
        if old_id is not None and old_id == await self._newest(conn, row.app_id, owner):
            return None
        try:
            plaintext = await self.cipher.open(conn, cell, row.value) if old_id else row.value
        except KeyDestroyed:
            return None  # shredded: there is nothing to re-encrypt
        sealed = await self.cipher.seal(conn, cell, owner, plaintext)
        if old_id is None and column.table.name == "messages":
            terms = await self.cipher.terms(conn, row.app_id, row.owner_id, plaintext)
            await repo.replace_terms(conn, row.app_id, row.owner_id, row.row_id, terms)
        return sealed_rows.Rewrite(row.row_id, row.value, sealed)

    async def _newest(self, conn: Connection, app_id: str, owner: Owner) -> str | None:
        """The owner's newest data key id (fixed once the keys phase has run)."""
        slot = (app_id, owner.kind, owner.id)
        if slot not in self._newest_ids:
            record = await repo.newest_key(conn, app_id, owner, "data")
            self._newest_ids[slot] = record.id if record else None
        return self._newest_ids[slot]

    async def _retire(self, job: repo.KeyJob) -> repo.KeyJob:
        async with self.db.write() as conn:
            retired = 0
            for kind in ("channel", "user"):
                keys = await repo.live_data_keys(conn, kind)
                newest: dict[tuple[str, str], repo.DataKeyRecord] = {}
                for key in keys:
                    slot = (key.app_id, key.owner_id)
                    if slot not in newest or (key.created_at, key.id) > (
                        newest[slot].created_at,
                        newest[slot].id,
                    ):
                        newest[slot] = key
                old = [
                    k.id
                    for k in keys
                    if newest[(k.app_id, k.owner_id)].id != k.id and k.created_at < job.started_at
                ]
                await repo.retire_keys(conn, old, self.clock.now())
                retired += len(old)
        self.cipher.forget_all()
        self._report("retire", retired, retired)
        return await self._save(job, phase="retire", state="done")

    def _report(self, phase: str, advanced: int, total: int | None) -> None:
        if self.progress is not None:
            self.progress(phase, advanced, total)


def _encode(column_index: int, after: str) -> str:
    return f"{column_index}:{after}"


def _decode(position: str) -> tuple[int, str]:
    index, _, after = position.partition(":")
    return int(index or 0), after
