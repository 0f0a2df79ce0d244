"""Prometheus counters for rate limiting, in the default registry (served by /metrics)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from prometheus_client import Counter


@dataclass(frozen=True, slots=True)
class RateLimitMetrics:
    """Requests allowed and limited per policy and scope; requests shed; store failures."""

    decisions: Counter
    shed: Counter
    store_failures: Counter
    penalties: Counter


@cache
def rate_limit_metrics() -> RateLimitMetrics:
    """The counters, registered once per process on first use."""
    return RateLimitMetrics(
        decisions=Counter(
            "bastion_ratelimit_requests",
            "Requests checked by a rate-limit policy, by outcome (allowed, limited).",
            ["policy", "scope", "outcome"],
        ),
        shed=Counter(
            "bastion_ratelimit_shed",
            "Requests shed with 503 because the node was overloaded.",
            ["group", "reason"],
        ),
        store_failures=Counter(
            "bastion_ratelimit_store_failures",
            "Checks that found the shared counter store unavailable, by fail mode.",
            ["mode"],
        ),
        penalties=Counter(
            "bastion_ratelimit_penalties",
            "Penalty blocks imposed on repeat offenders, by policy.",
            ["policy"],
        ),
    )
