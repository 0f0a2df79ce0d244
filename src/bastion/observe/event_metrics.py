"""Counts security events into the Prometheus families (an :class:`EventSink`)."""

from __future__ import annotations

from prometheus_client import Counter

from bastion.observe import metrics
from bastion.observe.events import SecurityEvent

_AUTH_ACTIONS = frozenset({"auth.login", "token.issue", "mfa.verify"})


class MetricsSink:
    """Turns events into counters; never raises."""

    def __init__(self) -> None:
        # Actions come from the event catalogue and outcomes are four words: few series.
        self._events: dict[tuple[str, str], Counter] = {}

    async def record(self, event: SecurityEvent) -> None:
        """Count the event in its families."""
        key = (event.action, event.outcome)
        series = self._events.get(key)
        if series is None:
            series = self._events[key] = metrics.SECURITY_EVENTS.labels(*key)
        series.inc()
        reason = (event.reason or "none")[:40]
        if event.action in _AUTH_ACTIONS:
            metrics.AUTH_ATTEMPTS.labels(outcome=event.outcome, reason=reason).inc()
        elif event.action.startswith("authz.") and event.outcome == "denied":
            permission = event.details.get("permission")
            label = permission[:40] if isinstance(permission, str) else "none"
            metrics.AUTHZ_DENIALS.labels(reason=reason, permission=label).inc()
