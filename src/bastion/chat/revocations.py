"""Incident response: refuse every token of a user, or of a whole app, issued before a time.

A cutoff is stored (so it survives restarts and reaches every node through the shared
database), applied to this process's ``Revocations`` at once (the next request is
refused, open sockets close), and re-read by every node every
``resource_server.revocation_refresh_seconds`` (so cutoffs written by the CLI or by
another node take effect within that time).
"""

from __future__ import annotations

import asyncio
import math
from datetime import datetime

from bastion.chat.context import ChatContext
from bastion.core.errors import FieldError, NotFound, Unavailable, ValidationFailed
from bastion.security import scopes
from bastion.security.principal import Principal
from bastion.store.repos import cross_tenant
from bastion.store.repos import cutoffs as repo
from bastion.store.repos import users as users_repo


def cutoff_seconds(moment: datetime) -> int:
    """The Unix second tokens must be issued at or after (rounded up: ``iat`` is whole)."""
    return math.ceil(moment.timestamp())


class TokenCutoffs:
    """Revoke all tokens issued before a time, for one user or for the whole app."""

    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx

    async def revoke_before(
        self, caller: Principal, *, user_id: str | None, issued_before: datetime | None
    ) -> datetime:
        """Refuse the app's (or one user's) tokens issued before ``issued_before`` (default now).

        Returns the cutoff in force afterwards, which is later than the one asked for
        when an earlier call already set a later one.
        """
        caller.require(scopes.USERS_WRITE)
        now = self._ctx.clock.now()
        before = issued_before or now
        if before > now:
            raise ValidationFailed([FieldError("body.issued_before", "Must not be in the future.")])
        async with self._ctx.db.write() as conn:
            if user_id is not None and not await users_repo.get_user(conn, caller.app_id, user_id):
                raise NotFound("No such user.")
            stored = await repo.raise_cutoff(
                conn, caller.app_id, user_id or repo.WHOLE_APP, before, now
            )
        self._ctx.revocations.cut_off(caller.app_id, user_id, cutoff_seconds(stored))
        return stored


class CutoffSync:
    """Reads cutoffs changed in the database, and which apps are disabled, into this
    process's revocations."""

    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx
        self._seen: datetime | None = None

    async def load(self) -> None:
        """Apply every cutoff changed since the last load (all of them the first time)
        and refuse the tokens of exactly the apps disabled now."""
        async with self._ctx.db.read() as conn:
            rows = await cross_tenant.cutoffs_since(conn, self._seen)
            disabled = await cross_tenant.disabled_app_ids(conn)
        self._ctx.revocations.set_disabled_apps(disabled)
        for app_id, subject, issued_before, updated_at in rows:
            self._ctx.revocations.cut_off(app_id, subject or None, cutoff_seconds(issued_before))
            if self._seen is None or updated_at > self._seen:
                self._seen = updated_at

    async def keep_loading(self, interval: float) -> None:
        """Re-read the cutoffs every ``interval`` seconds, riding out database outages."""
        while True:
            await asyncio.sleep(interval)
            try:
                await self.load()
            except Unavailable:
                continue
