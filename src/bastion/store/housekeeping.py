"""Deleting rows that expire by time: login interactions, codes, sessions, refresh tokens.

The authorization server keeps short-lived state in the database so that every node
sees it. Each row carries its expiry; once past it a row can never be used again (the
code that reads it checks the expiry too), so a periodic sweep removes it and the
tables stay the size of what is live.
"""

from __future__ import annotations

import asyncio

from bastion.core.clock import Clock
from bastion.core.errors import Unavailable
from bastion.store.db import Database
from bastion.store.repos import cross_tenant


async def purge_expired(db: Database, clock: Clock) -> None:
    """Delete every authorization-server row whose expiry has passed, in one transaction."""
    async with db.write() as conn:
        await cross_tenant.purge_expired_oauth_state(conn, clock.now())


async def keep_purging(db: Database, clock: Clock, interval: float) -> None:
    """Sweep every ``interval`` seconds, forever; a sweep the database refuses is retried
    at the next one (every node sweeps: deleting what another node deleted is a no-op)."""
    while True:
        await asyncio.sleep(interval)
        try:
            await purge_expired(db, clock)
        except Unavailable:
            continue
