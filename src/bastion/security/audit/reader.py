"""Queries over the audit log for auditors: filters, cursor pages and JSON-lines export."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bastion.security.audit import records
from bastion.store.db import Database
from bastion.store.repos import audit as repo
from bastion.store.repos.audit import AuditFilter

_EXPORT_BATCH = 1000


def stored_time(value: datetime) -> str:
    """A time in the stored form, so text comparison orders it correctly."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class AuditPage:
    """Matching records, oldest first, and the cursor for the next page."""

    events: list[dict[str, Any]]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class AuditReader:
    """Reads the log; the tenant filter is always set by the caller's token."""

    db: Database

    async def page(self, where: AuditFilter, after: int, limit: int) -> AuditPage:
        """One page of records matching ``where`` after the cursor."""
        async with self.db.read() as conn:
            rows = await repo.query(conn, where, after_seq=after, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        cursor = str(rows[-1]["seq"]) if more and rows else None
        return AuditPage([records.as_event_dict(row) for row in rows], cursor)

    async def export(self, where: AuditFilter) -> AsyncIterator[str]:
        """Every matching record as one JSON line, oldest first."""
        after = 0
        while True:
            async with self.db.read() as conn:
                rows = await repo.query(conn, where, after_seq=after, limit=_EXPORT_BATCH)
            for row in rows:
                yield json.dumps(records.as_event_dict(row), separators=(",", ":")) + "\n"
            if len(rows) < _EXPORT_BATCH:
                return
            after = int(rows[-1]["seq"])
