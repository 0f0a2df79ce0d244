"""Signed checkpoints over the audit chain, as CloudTrail's digest files.

A checkpoint covers the records written since the one before it. Its payload names
the range, the newest record's hash (which commits to the whole chain before it), a
SHA-256 digest of the range's record hashes, and a hash of the previous checkpoint's
signature, so checkpoints form a chain of their own. The payload is signed as a
compact JWS with the dedicated audit key.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from bastion.core.clock import Clock
from bastion.observe.logging import get_logger
from bastion.security.audit import records
from bastion.security.audit.log import mark_internal
from bastion.security.keys import KeyRing
from bastion.store.db import Database, active_transaction
from bastion.store.repos import audit as repo

JWS_TYPE = "bastion-audit-checkpoint+jws"
_log = get_logger("bastion.audit")


def signature_hash(signature: str | None) -> str:
    """What a checkpoint records of its predecessor's signature."""
    return hashlib.sha256((signature or "").encode()).hexdigest()


def payload_of(row: dict[str, Any], previous_signature: str | None) -> dict[str, Any]:
    """The signed fields of a checkpoint row."""
    return {
        "number": row["number"],
        "first_seq": row["first_seq"],
        "last_seq": row["last_seq"],
        "last_hash": row["last_hash"],
        "digest": row["digest"],
        "created_at": row["created_at"],
        "previous_signature_sha256": signature_hash(previous_signature),
    }


class InvalidSignature(Exception):
    """A checkpoint signature does not verify (never says why)."""


def open_signature(signature: str, keys: KeySet, alg: str) -> dict[str, Any]:
    """The payload a checkpoint signature vouches for."""
    try:
        token = jws.deserialize_compact(signature, keys, algorithms=[alg])
    except (JoseError, ValueError) as exc:
        raise InvalidSignature from exc
    if token.protected.get("typ") != JWS_TYPE:
        raise InvalidSignature
    data: dict[str, Any] = json.loads(token.payload)
    return data


@dataclass(slots=True)
class Checkpoints:
    """Writes a signed checkpoint when records have been added since the last one."""

    db: Database
    keys: KeyRing
    clock: Clock

    async def create(self) -> dict[str, Any] | None:
        """Sign the records written since the last checkpoint; None if there are none."""
        async with self.db.write() as conn:
            mark_internal(active_transaction())
            await repo.lock_head(conn)  # appenders wait until the checkpoint commits
            head = await repo.chain_head(conn)
            last = await repo.last_checkpoint(conn)
            first = 1 if last is None else int(last["last_seq"]) + 1
            if head is None or head[0] < first:
                return None
            hashes = await repo.hashes_between(conn, first, head[0])
            row: dict[str, Any] = {
                "number": 1 if last is None else int(last["number"]) + 1,
                "first_seq": first,
                "last_seq": head[0],
                "last_hash": head[1],
                "digest": records.digest(hashes),
                "created_at": self.clock.now().isoformat(timespec="microseconds"),
                "kid": str(self.keys.active.kid),
            }
            payload = records.canonical(payload_of(row, last["signature"] if last else None))
            header = {"alg": self.keys.alg, "kid": row["kid"], "typ": JWS_TYPE}
            row["signature"] = jws.serialize_compact(
                header, payload, self.keys.active, algorithms=[self.keys.alg]
            )
            await repo.insert_checkpoint(conn, row)
        return row

    async def run(self, interval: float) -> None:
        """Write a checkpoint every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.create()
            except Exception as exc:  # noqa: BLE001 - retried at the next interval
                _log.error("audit_checkpoint_failed", error=type(exc).__name__)
