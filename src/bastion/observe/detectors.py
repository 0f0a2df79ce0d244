"""Signals over sliding windows: counts, rates, and the attack-shape detectors.

Everything the alert rules look at is a *signal*: a number computed over the last
``window`` seconds. Counting signals come from security events and from requests;
the detectors keep a little more (which source failed for which account) so they can
say not just "many failures" but "one address failing for many accounts".
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from bastion.observe.events import SecurityEvent

MAX_WINDOW = 3600.0
"""Nothing older than an hour is kept."""
_MAX_ENTRIES = 50_000
"""Hard cap per keyed series, so a flood cannot grow memory (or evaluation time) unbounded."""

AUTH_ACTIONS = frozenset({"auth.login", "token.issue", "token.refresh", "mfa.verify"})

COUNTED = (
    "auth_failures",
    "authz_denials",
    "token_reuse",
    "requests",
    "http_401_403",
    "http_5xx",
    "http_429",
)
DETECTORS = ("credential_stuffing", "password_spraying", "enumeration")


@dataclass(frozen=True, slots=True)
class Reading:
    """A signal's value now, and what it is about (for the alert text)."""

    value: float
    details: Mapping[str, Any]


class _Counts:
    """Counts (and summed values) per second: reading a window costs at most 3,600 steps.

    Requests are counted here, not one entry each, so evaluating the rules stays cheap
    however busy the server is.
    """

    def __init__(self) -> None:
        self.buckets: deque[list[float]] = deque()

    def add(self, at: float, value: float = 0.0) -> None:
        second = float(int(at))
        if self.buckets and self.buckets[-1][0] == second:
            self.buckets[-1][1] += 1
            self.buckets[-1][2] += value
        else:
            self.buckets.append([second, 1.0, value])

    def totals(self, start: float, now: float) -> tuple[float, float]:
        """How many, and the sum of their values, after ``start``."""
        while self.buckets and self.buckets[0][0] < now - MAX_WINDOW:
            self.buckets.popleft()
        count = total = 0.0
        for second, n, value in self.buckets:
            if second > start:
                count += n
                total += value
        return count, total


class _Window:
    """Timestamped entries with keys, oldest first, dropped once older than an hour."""

    def __init__(self) -> None:
        self.entries: deque[tuple[float, tuple[str, ...]]] = deque(maxlen=_MAX_ENTRIES)

    def add(self, at: float, *keys: str) -> None:
        self.entries.append((at, keys))

    def since(self, start: float, now: float) -> list[tuple[str, ...]]:
        while self.entries and self.entries[0][0] < now - MAX_WINDOW:
            self.entries.popleft()
        return [keys for at, keys in self.entries if at > start]


def _account(event: SecurityEvent) -> str:
    username = event.details.get("username")
    return str(event.actor.subject or event.actor.client_id or username or "unknown")


class Signals:
    """Collects events and requests; answers what a signal reads over a window."""

    def __init__(self, spraying_max_sources: int = 3) -> None:
        self._windows: dict[str, _Window] = defaultdict(_Window)
        self._counts: dict[str, _Counts] = defaultdict(_Counts)
        self._spraying_max_sources = spraying_max_sources
        self.gauges: dict[str, Callable[[float], float]] = {}

    def on_event(self, event: SecurityEvent) -> None:
        """Count one security event into the signals it feeds."""
        at = event.at.timestamp()
        if event.action in AUTH_ACTIONS and event.outcome == "failure":
            self._windows["auth_failures"].add(at, event.origin.ip or "unknown", _account(event))
        elif event.action.startswith("authz.") and event.outcome == "denied":
            self._counts["authz_denials"].add(at)
        elif event.action == "token.reuse_detected":
            self._counts["token_reuse"].add(at)

    def on_request(self, at: float, status: int, seconds: float, principal: str | None) -> None:
        """Count one HTTP response."""
        self._counts["requests"].add(at, seconds)
        if status in (401, 403):
            self._counts["http_401_403"].add(at)
        elif status == 429:
            self._counts["http_429"].add(at)
        elif status >= 500:
            self._counts["http_5xx"].add(at)
        elif status == 404 and principal:
            self._windows["not_found"].add(at, principal)

    def read(self, signal: str, window: float, now: float) -> Reading:
        """The value of ``signal`` over the last ``window`` seconds."""
        start = now - min(window, MAX_WINDOW)
        if signal in self.gauges:
            return Reading(self.gauges[signal](window), {})
        detector = {
            "credential_stuffing": self._stuffing,
            "password_spraying": self._spraying,
            "enumeration": self._enumeration,
        }.get(signal)
        if detector is not None:
            return detector(start, now)
        if signal == "error_rate":
            total, _ = self._counts["requests"].totals(start, now)
            errors, _ = self._counts["http_5xx"].totals(start, now)
            return Reading(errors / total if total else 0.0, {"requests": total})
        if signal == "latency_mean":
            count, seconds = self._counts["requests"].totals(start, now)
            return Reading(seconds / count if count else 0.0, {})
        if signal == "auth_failures":
            return Reading(float(len(self._windows[signal].since(start, now))), {})
        return Reading(self._counts[signal].totals(start, now)[0], {})

    def _enumeration(self, start: float, now: float) -> Reading:
        """Many 404s for one principal: the most any one principal got."""
        return _top(Counter(keys[0] for keys in self._windows["not_found"].since(start, now)))

    def _stuffing(self, start: float, now: float) -> Reading:
        """Many accounts failing from one address: the most accounts any one address hit."""
        accounts: dict[str, set[str]] = defaultdict(set)
        for ip, account in self._windows["auth_failures"].since(start, now):
            accounts[ip].add(account)
        if not accounts:
            return Reading(0.0, {})
        ip, hit = max(accounts.items(), key=lambda item: len(item[1]))
        return Reading(float(len(hit)), {"source": ip, "accounts": len(hit)})

    def _spraying(self, start: float, now: float) -> Reading:
        """Many accounts with one or two failures each, from a small set of addresses."""
        failures = self._windows["auth_failures"].since(start, now)
        per_account = Counter(account for _ip, account in failures)
        sprayed = {account for account, count in per_account.items() if count <= 2}
        sources = {ip for ip, account in failures if account in sprayed}
        if not sprayed or len(sources) > self._spraying_max_sources:
            return Reading(0.0, {"sources": len(sources)})
        return Reading(float(len(sprayed)), {"sources": sorted(sources), "accounts": len(sprayed)})


def _top(counts: Counter[str]) -> Reading:
    if not counts:
        return Reading(0.0, {})
    principal, count = counts.most_common(1)[0]
    return Reading(float(count), {"principal": principal})
