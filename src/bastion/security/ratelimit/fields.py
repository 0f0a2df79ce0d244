"""The IETF ``RateLimit-Policy`` and ``RateLimit`` fields (draft-ietf-httpapi-ratelimit-headers).

Both are Structured-Field Lists of one item per quota, named by a string:
``RateLimit-Policy: "message-send-1s";q=5;w=1`` (quota ``q`` per window ``w`` seconds)
and ``RateLimit: "message-send-1s";r=4;t=1`` (``r`` remaining, ``t`` seconds until
the quota frees up).
"""

from __future__ import annotations

from collections.abc import Iterable

from bastion.security.ratelimit.policies import Policy
from bastion.security.ratelimit.throttle import Usage


def policy_field(policies: Iterable[Policy]) -> bytes:
    """The ``RateLimit-Policy`` value for the configured quotas of ``policies``."""
    return ", ".join(
        f'"{q.name}";q={q.limit};w={q.window}' for p in policies for q in p.quotas
    ).encode()


def usage_policy_field(usages: Iterable[Usage]) -> bytes:
    """The ``RateLimit-Policy`` value for the quotas actually applied (after overrides)."""
    return ", ".join(
        f'"{u.quota.name}";q={u.quota.limit};w={u.quota.window}' for u in usages
    ).encode()


def usage_field(usages: Iterable[Usage]) -> bytes:
    """The ``RateLimit`` value: what is left of each quota and when it frees up."""
    return ", ".join(f'"{u.quota.name}";r={u.remaining};t={u.reset}' for u in usages).encode()
