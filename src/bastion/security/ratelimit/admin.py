"""Overrides as the admin API and the CLI manage them: checked, stored, and reloaded.

An app backend may override the ``user``, ``client`` and ``app`` policies of its own
app, up to ``ratelimit.override_max_factor`` times the configured rate; ``ip``
policies protect the whole server and only the operator (CLI) may override them.
Every node rereads the table every ``ratelimit.override_refresh_seconds``; the node
that made a change applies it at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from limits import parse

from bastion.core.clock import Clock
from bastion.core.errors import FieldError, Forbidden, NotFound, Unavailable, ValidationFailed
from bastion.security.ratelimit.overrides import APP_WIDE, Override, Overrides
from bastion.security.ratelimit.policies import Policy, PolicySet
from bastion.store.db import Database
from bastion.store.repos import cross_tenant
from bastion.store.repos import ratelimits as repo
from bastion.store.repos.cutoffs import app_exists
from bastion.store.repos.users import get_user


@dataclass(frozen=True, slots=True)
class OverrideView:
    """One stored override, for the API."""

    policy: str
    user_id: str | None
    quotas: tuple[str, ...]


class OverrideAdmin:
    """Checks, stores and loads overrides."""

    def __init__(
        self,
        db: Database,
        policies: PolicySet,
        overrides: Overrides,
        clock: Clock,
        max_factor: float,
    ) -> None:
        self._db = db
        self._policies = policies
        self._overrides = overrides
        self._clock = clock
        self._max_factor = max_factor
        self._rows: list[Override] = []

    async def reload(self) -> None:
        """Read every override and swap them in."""
        async with self._db.read() as conn:
            rows = await cross_tenant.all_rate_limit_overrides(conn)
        self._rows = [Override(*row) for row in rows]
        self._overrides.replace(self._rows)

    async def keep_reloading(self, every: float) -> None:
        """Reload forever (a background task); a database outage keeps the last table."""
        while True:
            with contextlib.suppress(Unavailable):
                await self.reload()
            await asyncio.sleep(every)

    def of_app(self, app_id: str) -> list[OverrideView]:
        """The overrides of one app, as last loaded."""
        return [
            OverrideView(o.policy, None if o.subject == APP_WIDE else o.subject, o.quotas)
            for o in self._rows
            if o.app_id == app_id
        ]

    def policy(self, name: str) -> Policy:
        """A configured policy by name (404 if there is none)."""
        found = self._policies.by_name.get(name)
        if found is None:
            raise NotFound("No such rate-limit policy.")
        return found

    def check(self, name: str, quotas: tuple[str, ...], *, operator: bool = False) -> Policy:
        """Refuse overrides of unknown or IP policies and quotas above the allowed ceiling."""
        policy = self.policy(name)
        if policy.scope == "ip" and not operator:
            raise Forbidden("IP policies protect the whole server: only the operator sets them.")
        ceiling = self._max_factor * max(q.limit / q.window for q in policy.quotas)
        for index, text in enumerate(quotas):
            try:
                item = parse(text)
            except ValueError as exc:
                raise ValidationFailed(
                    [FieldError(f"body.quotas.{index}", "Not a quota.")]
                ) from exc
            if not operator and item.amount / item.get_expiry() > ceiling:
                raise ValidationFailed(
                    [
                        FieldError(
                            f"body.quotas.{index}", "Above the allowed ceiling for this policy."
                        )
                    ]
                )
        return policy

    async def put(
        self,
        app_id: str,
        user_id: str | None,
        name: str,
        quotas: tuple[str, ...],
        *,
        operator: bool = False,
    ) -> OverrideView:
        """Store an override (replacing any), then apply it on this node."""
        self.check(name, quotas, operator=operator)
        async with self._db.write() as conn:
            if not await app_exists(conn, app_id):
                raise NotFound("No such app.")
            if user_id is not None and await get_user(conn, app_id, user_id) is None:
                raise NotFound("No such user.")
            subject = user_id or APP_WIDE
            await repo.put_override(conn, app_id, subject, name, quotas, self._clock.now())
        await self.reload()
        return OverrideView(name, user_id, quotas)

    async def delete(self, app_id: str, user_id: str | None, name: str) -> None:
        """Remove an override (404 if there is none), then apply that on this node."""
        self.policy(name)
        async with self._db.write() as conn:
            found = await repo.delete_override(conn, app_id, user_id or APP_WIDE, name)
        if not found:
            raise NotFound("No such override.")
        await self.reload()
