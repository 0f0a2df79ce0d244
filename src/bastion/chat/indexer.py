"""The search indexer: files sent messages' blind-index terms into the index, in batches.

A send leaves its message's terms on the message's row (``store.repos.pending_terms``);
writing a dozen entries at unrelated places of the term index inside every send's
transaction was most of what encryption added to a send on SQLite. This task moves them
in batches, one transaction each, where the messages share index pages and a commit.
Search reads the pending terms too, so nothing waits on it to be found. It drains at
start-up (a crash leaves the terms on their rows), then one interval after a send or
edit pokes it, so an idle node runs no transactions; a slower idle sweep picks up terms
nobody here poked for (another node's, a crashed process's). On PostgreSQL several
nodes may run it at once, each batch taking rows the others have not locked.
"""

from __future__ import annotations

import asyncio
import contextlib

from bastion.observe.logging import get_logger
from bastion.store.db import Database
from bastion.store.repos import pending_terms

_log = get_logger("bastion.search.indexer")


class SearchIndexer:
    """Moves pending blind-index terms into the term index."""

    def __init__(self, db: Database, batch: int) -> None:
        self._db = db
        self._batch = batch
        self._due = asyncio.Event()

    def poke(self) -> None:
        """Terms were left pending by a committed write: file them at the next interval."""
        self._due.set()

    async def drain(self) -> int:
        """File every pending message's terms, a batch per transaction; return how many."""
        filed = 0
        while True:
            async with self._db.write() as conn:
                count = await pending_terms.index_batch(conn, self._batch)
            filed += count
            if count < self._batch:
                return filed

    async def run(self, interval: float, idle: float) -> None:
        """Drain now; then ``interval`` seconds after each poke, or every ``idle`` seconds
        without one; until cancelled. A poke during a drain is kept for the next round."""
        while True:
            try:
                await self.drain()
            except Exception as exc:  # noqa: BLE001 - the terms stay pending; retried next time
                _log.error("search_index_failed", error=type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._due.wait(), idle)
            self._due.clear()
            # Let the sends of the next moment join this batch.
            await asyncio.sleep(interval)
