"""Security events: one schema for everything the audit log, metrics and alerts consume.

Authentication, authorization, validation, rate limiting, key operations and admin
changes all report through :class:`SecurityEvents`. It stamps each event with the UTC
time, a per-process monotonic sequence number and the node name, then hands it to
every configured sink in order. A sink that raises makes ``emit`` raise: a sink that
must not lose events (the audit log) can so fail the request that caused them, while
sinks that may drop (log, metrics) swallow their own errors.
"""

from __future__ import annotations

import itertools
import logging
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, Protocol

from structlog.typing import FilteringBoundLogger

from bastion.core.clock import Clock

from .logging import get_logger

Outcome = Literal["success", "failure", "allowed", "denied"]
Detail = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a request came from: client address, user agent and request id."""

    ip: str | None = None
    user_agent: str | None = None
    request_id: str | None = None


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: the app (tenant), the subject, the OAuth client and the roles held."""

    app_id: str | None = None
    subject: str | None = None
    client_id: str | None = None
    roles: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SecurityEvent:
    """One security-relevant fact: who did what to which resource, and how it ended.

    ``action`` is a dotted name from the event catalogue (``auth.login``,
    ``token.refresh``, ``authz.decision``, ``ratelimit.block`` ...). ``resource`` names
    the object as ``kind:id``. ``details`` carries extra plain values; it must never
    hold secrets, tokens or message content.
    """

    action: str
    outcome: Outcome
    at: datetime
    sequence: int
    node: str
    actor: Actor = field(default_factory=Actor)
    origin: Origin = field(default_factory=Origin)
    resource: str | None = None
    reason: str | None = None
    details: Mapping[str, Detail] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The event as plain JSON-ready data (the wire and storage form)."""
        return {
            "action": self.action,
            "outcome": self.outcome,
            "at": self.at.isoformat(),
            "sequence": self.sequence,
            "node": self.node,
            "app_id": self.actor.app_id,
            "subject": self.actor.subject,
            "client_id": self.actor.client_id,
            "roles": list(self.actor.roles),
            "ip": self.origin.ip,
            "user_agent": self.origin.user_agent,
            "request_id": self.origin.request_id,
            "resource": self.resource,
            "reason": self.reason,
            "details": dict(self.details),
        }


class EventSink(Protocol):
    """A destination for security events (log, audit log, metrics, SIEM queue)."""

    async def record(self, event: SecurityEvent) -> None:
        """Take one event; raise only when losing it must fail the caller."""
        ...


class LogSink:
    """Writes each event as one structured log line on the ``bastion.security`` logger.

    The line is written on the event loop, as the access log's is: handing each one to
    a worker thread (structlog's ``ainfo``) cost a send more than the rest of its
    logging, for a write of a few hundred bytes.

    ``debug_actions`` are logged at debug level, the rest at info. The server passes
    ``data.change``: one per committed write, so the bulk of a chat server's events,
    each kept whole in the audit log, and each request has its access-log line. Their
    line cost a message send about a twelfth of its CPU.
    """

    def __init__(
        self,
        logger: FilteringBoundLogger | None = None,
        *,
        debug_actions: frozenset[str] = frozenset(),
    ) -> None:
        self._log = logger or get_logger("bastion.security")
        self._debug_actions = debug_actions

    async def record(self, event: SecurityEvent) -> None:
        """Log the event; logging problems never reach the caller."""
        try:
            if event.action not in self._debug_actions:
                self._log.info("security_event", **event.as_dict())
            elif self._log.is_enabled_for(logging.DEBUG):
                self._log.debug("security_event", **event.as_dict())
        except Exception:  # noqa: BLE001 - a log line must never fail a request
            return


class MemorySink:
    """Keeps the newest events in memory, for the admin API and tests."""

    def __init__(self, capacity: int = 10_000) -> None:
        self._capacity = capacity
        self.events: list[SecurityEvent] = []

    async def record(self, event: SecurityEvent) -> None:
        """Append the event, dropping the oldest past capacity."""
        self.events.append(event)
        if len(self.events) > self._capacity:
            del self.events[: len(self.events) - self._capacity]

    def of(self, action: str) -> list[SecurityEvent]:
        """The kept events with this action, oldest first."""
        return [e for e in self.events if e.action == action]


class SecurityEvents:
    """The one emitter every layer reports through; built once in the composition root."""

    def __init__(self, clock: Clock, sinks: Sequence[EventSink], node: str | None = None) -> None:
        self._clock = clock
        self._sinks = list(sinks)
        self._sequence = itertools.count(1)
        self.node = node or socket.gethostname()

    def add_sink(self, sink: EventSink) -> None:
        """Send future events to ``sink`` as well (after the existing ones)."""
        self._sinks.append(sink)

    async def emit(
        self,
        action: str,
        outcome: Outcome,
        *,
        actor: Actor | None = None,
        origin: Origin | None = None,
        resource: str | None = None,
        reason: str | None = None,
        details: Mapping[str, Detail] | None = None,
    ) -> SecurityEvent:
        """Build an event and hand it to every sink; a raising sink makes this raise."""
        event = SecurityEvent(
            action=action,
            outcome=outcome,
            at=self._clock.now(),
            sequence=next(self._sequence),
            node=self.node,
            actor=actor or Actor(),
            origin=origin or Origin(),
            resource=resource,
            reason=reason,
            details=dict(details or {}),
        )
        for sink in self._sinks:
            await sink.record(event)
        return event
