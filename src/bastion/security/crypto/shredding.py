"""Crypto-shredding: destroy an owner's keys so everything sealed under them is unreadable.

The wrapped key material is erased from ``data_keys`` (the row stays, marked destroyed,
so a value that names it reads as erased rather than as tampered), and the key ids are
recorded in the keyring, which is never part of a database backup: a restored old
backup brings the wrapped key back, but Bastion refuses to unwrap it. Channel shredding
also destroys the channel's blind-index key and removes its index terms. The operation
is reported as a ``key.shred`` security event. (To make old backups' copies
unrecoverable even to someone holding the keyring and its master key, rotate, rewrap,
retire and destroy the KEK versions they were wrapped under: ``docs/encryption.md``.)
"""

from __future__ import annotations

import datetime as dt

from bastion.observe.events import Actor, SecurityEvents
from bastion.security.crypto.envelope import EnvelopeCipher
from bastion.store.db import Database
from bastion.store.repos import data_keys as repo
from bastion.store.repos import pending_terms
from bastion.store.sealing import Owner


async def shred(
    db: Database,
    cipher: EnvelopeCipher,
    events: SecurityEvents,
    app_id: str,
    owner: Owner,
    now: dt.datetime,
) -> int:
    """Destroy every key of ``owner`` in ``app_id``; return how many were destroyed."""
    async with db.write() as conn:
        destroyed = await repo.destroy_owner_keys(conn, app_id, owner, now)
        if owner.kind == "channel":
            await repo.drop_channel_terms(conn, app_id, owner.id)
            await pending_terms.drop_channel(conn, app_id, owner.id)
        # Recorded before the commit: a crash leaves the keys refused, never readable.
        cipher.keys.record_destroyed(destroyed)
    cipher.forget(app_id, destroyed)
    await events.emit(
        "key.shred",
        "success",
        actor=Actor(app_id=app_id, subject="operator"),
        resource=f"{owner.kind}:{owner.id}",
        details={"keys_destroyed": len(destroyed)},
    )
    return len(destroyed)
