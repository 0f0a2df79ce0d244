"""The audit log as an event sink, and the transaction hooks that make it fail closed.

Three paths lead into the chain:

* An event emitted outside any transaction is appended in a transaction of its own.
* An event emitted inside a ``write()`` transaction is held and appended as that
  transaction's last statement, so it commits with the change. If the transaction
  rolls back, the held events (a denial, say) are appended on their own afterwards.
* :class:`ChangeAudit` emits one ``data.change`` event for every transaction a request
  commits, so no request changes state without a record: when the record cannot be
  written, the transaction rolls back and the request fails with 503.
"""

from __future__ import annotations

from typing import Any

from bastion.core.errors import Unavailable
from bastion.observe import metrics
from bastion.observe.events import SecurityEvent, SecurityEvents
from bastion.observe.logging import get_logger
from bastion.security.audit import records
from bastion.security.audit.context import current_request
from bastion.store.db import Connection, Database, Transaction, active_transaction
from bastion.store.repos import audit as repo

_PENDING = "audit.pending"
_INTERNAL = "audit.internal"
CHANGE_ACTION = "data.change"

_log = get_logger("bastion.audit")


class AuditUnavailable(Unavailable):
    """The audit log cannot record, so the request may not proceed."""

    def __init__(self) -> None:
        super().__init__("The audit log is unavailable; nothing was changed.")


class ChainMoved(RuntimeError):
    """The chain's end moved while this appender held its lock (it should not)."""


def mark_internal(tx: Transaction | None) -> None:
    """Flag a transaction as the audit log's own: it gets no change record of its own."""
    if tx is not None:
        tx.data[_INTERNAL] = True


class AuditLog:
    """Appends security events to the hash chain; an :class:`EventSink` and a hook."""

    def __init__(
        self,
        db: Database,
        redactor: records.Redactor,
        *,
        fail_closed: bool = True,
        reads_fail_closed: bool = False,
    ) -> None:
        self._db = db
        self.redactor = redactor
        self._fail_closed = fail_closed
        self._reads_fail_closed = reads_fail_closed
        # Where this process last saw the chain end: an append chained onto it needs no
        # read first. The database refuses it if another appender got there first.
        self._head: tuple[int, str] | None = None

    async def record(self, event: SecurityEvent) -> None:
        """Append the event now, or with the transaction this task is inside."""
        tx = active_transaction()
        if tx is not None and not tx.data.get(_INTERNAL):
            tx.data.setdefault(_PENDING, []).append(event)
            return
        try:
            await self._append_alone([event])
        except Exception as exc:  # noqa: BLE001 - any failure to record is handled alike
            self._failed(exc, [event])

    async def before_commit(self, tx: Transaction) -> None:
        """Append the transaction's held events as its last statement."""
        events: list[SecurityEvent] = tx.data.get(_PENDING, [])
        if not events or tx.data.get(_INTERNAL):
            return
        try:
            if self._must_fail():
                await self._append(tx.conn, events)
            else:
                # Fail-open: a savepoint keeps the change alive if the append fails.
                async with tx.conn.begin_nested():
                    await self._append(tx.conn, events)
        except Exception as exc:  # noqa: BLE001 - any failure to record is handled alike
            self._failed(exc, events)
            return
        tx.data[_PENDING] = []

    async def after_rollback(self, tx: Transaction) -> None:
        """Keep what was reported inside a rolled-back transaction (not its change)."""
        self._head = None  # the rolled-back append may have moved it
        kept = [e for e in tx.data.pop(_PENDING, []) if e.action != CHANGE_ACTION]
        if not kept or tx.data.get(_INTERNAL):
            return
        try:
            await self._append_alone(kept)
        except Exception as exc:  # noqa: BLE001 - the request is failing already
            _log.error("audit_append_failed", error=type(exc).__name__, lost=len(kept))
            metrics.AUDIT_FAILURES.inc(len(kept))

    async def _append_alone(self, events: list[SecurityEvent]) -> None:
        async with self._db.write() as conn:
            mark_internal(active_transaction())
            await self._append(conn, events)

    async def _append(self, conn: Connection, events: list[SecurityEvent]) -> None:
        rows = [records.to_row(event, self.redactor) for event in events]
        # Chain onto the end this process last saw (one statement when nobody else
        # appended since); if the chain moved on, read its end under the lock and redo.
        head = self._head
        if head is None or not await repo.extend_chain(conn, records.chain(rows, head), head):
            head = await repo.lock_head(conn)
            if not await repo.extend_chain(conn, records.chain(rows, head), head):
                raise ChainMoved
        self._head = (int(rows[-1]["seq"]), str(rows[-1]["hash"]))
        metrics.AUDIT_APPENDS.inc(len(rows))

    def _must_fail(self) -> bool:
        request = current_request()
        if request is not None and not request.state_changing:
            return self._reads_fail_closed
        return self._fail_closed

    def _failed(self, exc: Exception, events: list[SecurityEvent]) -> None:
        """Count and log a failed append; raise when the caller must not go on."""
        metrics.AUDIT_FAILURES.inc(len(events))
        _log.error("audit_append_failed", error=type(exc).__name__, lost=len(events))
        if self._must_fail():
            raise AuditUnavailable from exc


class ChangeAudit:
    """Emits ``data.change`` in every transaction a request commits (before the audit hook)."""

    def __init__(self, events: SecurityEvents) -> None:
        self._events = events

    async def before_commit(self, tx: Transaction) -> None:
        """Report the change as part of the transaction that makes it."""
        request = current_request()
        if request is None or tx.data.get(_INTERNAL):
            return
        details: dict[str, Any] = {"method": request.method, "route": request.route}
        details.update(request.path_params())
        await self._events.emit(
            CHANGE_ACTION,
            "success",
            actor=request.actor(),
            origin=request.origin(),
            resource=request.resource(),
            details=details,
        )

    async def after_rollback(self, tx: Transaction) -> None:
        """Nothing changed, so there is nothing to report."""
        return
