"""The IETF ``RateLimit-Policy`` and ``RateLimit`` fields (draft-ietf-httpapi-ratelimit-headers).

Both are Structured-Field Lists of one item per quota, named by a string:
``RateLimit-Policy: "message-send-1s";q=5;w=1`` (quota ``q`` per window ``w`` seconds)
and ``RateLimit: "message-send-1s";r=4;t=1`` (``r`` remaining, ``t`` seconds until
the quota frees up).
"""

from __future__ import annotations

from collections.abc import Iterable

from bastion.security.ratelimit.policies import Policy, Quota
from bastion.security.ratelimit.throttle import Usage


def policy_field(policies: Iterable[Policy]) -> bytes:
    """The ``RateLimit-Policy`` value for the configured quotas of ``policies``."""
    return ", ".join(
        f'"{q.name}";q={q.limit};w={q.window}' for p in policies for q in p.quotas
    ).encode()


_POLICY_FIELDS: dict[tuple[Quota, ...], bytes] = {}
_POLICY_FIELDS_MAX = 4096


def usage_policy_field(usages: Iterable[Usage]) -> bytes:
    """The ``RateLimit-Policy`` value for the quotas actually applied (after overrides).

    The same few quota sets come back on almost every request: their text is kept.
    """
    quotas = tuple(u.quota for u in usages)
    found = _POLICY_FIELDS.get(quotas)
    if found is None:
        found = ", ".join(f'"{q.name}";q={q.limit};w={q.window}' for q in quotas).encode()
        if len(_POLICY_FIELDS) >= _POLICY_FIELDS_MAX:
            _POLICY_FIELDS.clear()
        _POLICY_FIELDS[quotas] = found
    return found


def usage_field(usages: Iterable[Usage]) -> bytes:
    """The ``RateLimit`` value: what is left of each quota and when it frees up."""
    return ", ".join(f'"{u.quota.name}";r={u.remaining};t={u.reset}' for u in usages).encode()
