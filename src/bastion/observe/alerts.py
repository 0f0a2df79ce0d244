"""Alert rules: threshold and anomaly rules with a for-duration, severity and cool-down.

Every evaluation reads each rule's signal. A rule whose condition holds becomes
*pending*; once it has held for ``for_seconds`` it is *firing* and its notifiers are
called, unless the rule notified less than ``cooldown_seconds`` ago. When the
condition stops holding, a firing rule is *resolved* (and says so, under the same
cool-down). State is kept per rule and exposed through the admin API and the
``bastion_alert_firing`` gauge.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

from bastion.core.clock import Clock
from bastion.observe import metrics
from bastion.observe.baselines import Baselines
from bastion.observe.detectors import Reading, Signals
from bastion.observe.logging import get_logger

State = Literal["inactive", "pending", "firing"]
_log = get_logger("bastion.alerts")


@dataclass(frozen=True, slots=True)
class Rule:
    """One alert rule, as configured."""

    name: str
    signal: str
    kind: Literal["threshold", "anomaly"] = "threshold"
    threshold: float = 0.0
    k: float = 3.0
    window_seconds: float = 60.0
    for_seconds: float = 0.0
    severity: Literal["info", "warning", "critical"] = "warning"
    cooldown_seconds: float = 900.0


@dataclass(frozen=True, slots=True)
class Notification:
    """What notifiers send: a rule changed to firing or resolved."""

    rule: Rule
    status: Literal["firing", "resolved"]
    value: float
    since: datetime
    at: datetime
    details: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        """The JSON body of a notification."""
        return {
            "alert": self.rule.name,
            "status": self.status,
            "severity": self.rule.severity,
            "signal": self.rule.signal,
            "kind": self.rule.kind,
            "value": self.value,
            "threshold": self.rule.threshold if self.rule.kind == "threshold" else None,
            "k": self.rule.k if self.rule.kind == "anomaly" else None,
            "window_seconds": self.rule.window_seconds,
            "since": self.since.isoformat(),
            "at": self.at.isoformat(),
            "details": self.details,
        }


class Notifier(Protocol):
    """Delivers notifications somewhere (webhook, e-mail, log)."""

    name: str

    async def send(self, notification: Notification) -> None:
        """Deliver it, retrying as the notifier sees fit; raise if it finally failed."""
        ...


@dataclass(slots=True)
class RuleState:
    """Where one rule stands."""

    rule: Rule
    state: State = "inactive"
    since: datetime | None = None
    started: float = 0.0
    value: float = 0.0
    last_notified: float | None = None
    notifications: int = 0
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The state as the admin API shows it."""
        return {
            "rule": self.rule.name,
            "signal": self.rule.signal,
            "severity": self.rule.severity,
            "state": self.state,
            "since": self.since.isoformat() if self.since else None,
            "value": self.value,
            "notifications": self.notifications,
            "details": self.details,
        }


class AlertEngine:
    """Evaluates the rules over the signals and calls the notifiers."""

    def __init__(
        self,
        rules: Sequence[Rule],
        signals: Signals,
        notifiers: Sequence[Notifier],
        clock: Clock,
        baselines: Baselines | None = None,
    ) -> None:
        self.signals = signals
        self._notifiers = list(notifiers)
        self._clock = clock
        self.baselines = baselines or Baselines()
        self.states = {rule.name: RuleState(rule) for rule in rules}
        # The gauge changes only when a rule fires or resolves.
        for state in self.states.values():
            self._export(state)

    async def evaluate(self) -> list[Notification]:
        """Evaluate every rule once; return the notifications sent."""
        sent = []
        for state in self.states.values():
            notification = self._step(state)
            if notification is not None:
                await self._notify(notification)
                sent.append(notification)
        return sent

    def _holds(self, rule: Rule, reading: Reading) -> bool:
        if rule.kind == "threshold":
            return reading.value > rule.threshold
        score = self.baselines.score(rule.name, reading.value, self._clock.now())
        return score is not None and score > rule.k

    def _step(self, state: RuleState) -> Notification | None:
        rule, now = state.rule, self._clock.timestamp()
        reading = self.signals.read(rule.signal, rule.window_seconds, now)
        state.value = reading.value
        holds = self._holds(rule, reading)
        if holds:
            state.details = dict(reading.details)
        if holds and state.state == "inactive":
            state.state, state.since = "pending", datetime.fromtimestamp(now, UTC)
            state.started = now
        if holds and state.state == "pending" and self._held_long_enough(state, now):
            state.state = "firing"
            return self._maybe(state, "firing", now)
        if not holds and state.state != "inactive":
            was_firing = state.state == "firing"
            state.state = "inactive"
            if was_firing:
                return self._maybe(state, "resolved", now)
        return None

    @staticmethod
    def _held_long_enough(state: RuleState, now: float) -> bool:
        return now - state.started >= state.rule.for_seconds

    def _maybe(
        self, state: RuleState, status: Literal["firing", "resolved"], now: float
    ) -> Notification | None:
        self._export(state)
        cooling = (
            state.last_notified is not None
            and now - state.last_notified < state.rule.cooldown_seconds
        )
        if cooling or (status == "resolved" and state.notifications == 0):
            return None
        state.last_notified = now
        if status == "firing":
            state.notifications += 1
            metrics.ALERTS_FIRED.labels(rule=state.rule.name, severity=state.rule.severity).inc()
        since = state.since or self._clock.now()
        return Notification(
            state.rule, status, state.value, since, self._clock.now(), dict(state.details)
        )

    @staticmethod
    def _export(state: RuleState) -> None:
        firing = 1.0 if state.state == "firing" else 0.0
        metrics.ALERTS_FIRING.labels(rule=state.rule.name, severity=state.rule.severity).set(firing)

    async def _notify(self, notification: Notification) -> None:
        for notifier in self._notifiers:
            try:
                await notifier.send(notification)
            except Exception as exc:  # noqa: BLE001 - one notifier failing must not stop the rest
                metrics.NOTIFY_FAILURES.labels(notifier=notifier.name).inc()
                _log.error("alert_notify_failed", notifier=notifier.name, error=type(exc).__name__)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every rule's state, for the admin API."""
        return [state.as_dict() for state in self.states.values()]

    async def run(self, interval: float) -> None:
        """Evaluate every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.evaluate()
            except Exception as exc:  # noqa: BLE001 - the next round tries again
                _log.error("alert_evaluation_failed", error=type(exc).__name__)
