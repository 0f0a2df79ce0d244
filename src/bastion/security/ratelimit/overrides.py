"""Per-app and per-user overrides of any policy's quotas.

An override replaces the quotas of one named policy for one app (every caller counted
under that app) or for one user. A user override wins over an app override. The
table is held in memory and replaced as a whole when the store is reread, so a check
costs two dictionary lookups.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from bastion.security.ratelimit.identity import Caller
from bastion.security.ratelimit.policies import Policy, Quota, parse_quota

APP_WIDE = "*"
"""The subject of an override that applies to a whole app."""


@dataclass(frozen=True, slots=True)
class Override:
    """New quotas for ``policy`` within ``app_id``, for one user or (``*``) everyone."""

    app_id: str
    subject: str
    policy: str
    quotas: tuple[str, ...]


class Overrides:
    """The current overrides, looked up per request."""

    def __init__(self, scale: float = 1.0) -> None:
        self._scale = scale
        self._table: Mapping[tuple[str, str, str], tuple[Quota, ...]] = {}

    def replace(self, overrides: Iterable[Override]) -> None:
        """Swap in a new set of overrides at once."""
        self._table = {
            (o.app_id, o.subject, o.policy): tuple(
                parse_quota(o.policy, q, self._scale) for q in o.quotas
            )
            for o in overrides
        }

    def quotas(self, policy: Policy, caller: Caller) -> tuple[Quota, ...]:
        """The quotas that apply to ``caller`` under ``policy``."""
        if not self._table or caller.app is None:
            return policy.quotas
        if caller.user is not None:
            found = self._table.get((caller.app, caller.user, policy.name))
            if found is not None:
                return found
        return self._table.get((caller.app, APP_WIDE, policy.name), policy.quotas)
