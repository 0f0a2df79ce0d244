"""Users of an app, managed by the app's backend."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from bastion.chat.context import ChatContext, Outbox, check_name, check_version, record_change
from bastion.chat.denials import Denial, Hidden, reports
from bastion.chat.paging import Page, one_direction, page_both_ways
from bastion.chat.views import user_view
from bastion.core.errors import Conflict, NotFound, Unavailable
from bastion.core.ids import Kind, is_id, new_id
from bastion.observe.events import Origin
from bastion.security import scopes
from bastion.security.oauth import rfc8693
from bastion.security.principal import Principal
from bastion.store.records import DuplicateKeyError, UserRecord
from bastion.store.repos import cross_tenant
from bastion.store.repos import users as repo


class Users:
    """Create, read, update and deactivate users."""

    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx

    async def create(self, caller: Principal, *, external_id: str, display_name: str) -> UserRecord:
        """Create a user; an external id already in use is a conflict."""
        caller.require(scopes.USERS_WRITE)
        check_name(self._ctx, "body.display_name", display_name)
        try:
            async with self._ctx.db.write() as conn:
                return await repo.insert_user(
                    conn,
                    caller.app_id,
                    user_id=new_id(Kind.USER),
                    external_id=external_id,
                    display_name=display_name,
                    now=self._ctx.clock.now(),
                )
        except DuplicateKeyError:
            raise Conflict("A user with this external_id already exists.") from None

    @reports("user:read")
    async def get(self, caller: Principal, user_id: str) -> UserRecord:
        """Return one of the app's users; anything else is not found."""
        caller.require(scopes.USERS_READ)
        async with self._ctx.db.read() as conn:
            return _hidden(await repo.get_user(conn, caller.app_id, user_id), user_id)

    async def me(self, caller: Principal) -> UserRecord:
        """Return the user the token acts for."""
        async with self._ctx.db.read() as conn:
            return _found(await repo.get_user(conn, caller.app_id, caller.subject))

    async def page(
        self,
        caller: Principal,
        *,
        after: str | None,
        before: str | None = None,
        limit: int,
        external_id: str | None,
        active: bool | None,
    ) -> Page[UserRecord, str]:
        """Return a page of users by id, with the user ids to page on from either end."""
        caller.require(scopes.USERS_READ)
        one_direction(after, before)
        async with self._ctx.db.read() as conn:
            if external_id is not None:
                found = await repo.get_user_by_external_id(conn, caller.app_id, external_id)
                return Page([found] if found and active in (None, found.active) else [], None, None)

            async def fetch(
                after_id: str | None, before_id: str | None, count: int
            ) -> list[UserRecord]:
                return await repo.list_users(
                    conn,
                    caller.app_id,
                    after=after_id,
                    before=before_id,
                    limit=count,
                    active=active,
                )

            return await page_both_ways(
                fetch, lambda user: user.id, after=after, before=before, limit=limit
            )

    @reports("user:write")
    async def update(
        self, caller: Principal, user_id: str, changes: dict[str, Any], if_match: int | None
    ) -> UserRecord:
        """Apply a merge patch to a user."""
        caller.require(scopes.USERS_WRITE)
        if "display_name" in changes:
            check_name(self._ctx, "body.display_name", changes["display_name"])
        outbox = Outbox()
        async with self._ctx.db.write() as conn:
            user = _hidden(await repo.get_user(conn, caller.app_id, user_id, lock=True), user_id)
            check_version(user.version, if_match)
            if changes:
                await repo.update_user(
                    conn, caller.app_id, user_id, changes=changes, now=self._ctx.clock.now()
                )
                user = _found(await repo.get_user(conn, caller.app_id, user_id))
                outbox.add(caller.app_id, "user.updated", user_view(user), user_ids=(user.id,))
        await outbox.publish(self._ctx.broker)
        return user

    @reports("user:write")
    async def deactivate(self, caller: Principal, user_id: str, origin: Origin) -> UserRecord:
        """Deactivate a user: their tokens stop working and their sockets close; the change
        is recorded as an ``admin.change`` event."""
        caller.require(scopes.USERS_WRITE)
        outbox = Outbox()
        async with self._ctx.db.write() as conn:
            user = _hidden(await repo.get_user(conn, caller.app_id, user_id, lock=True), user_id)
            if user.active:
                now = self._ctx.clock.now()
                await repo.update_user(
                    conn, caller.app_id, user_id, changes={"active": False}, now=now
                )
                user = _found(await repo.get_user(conn, caller.app_id, user_id))
                details = {"change": "user.deactivate", "before": "active", "after": "inactive"}
                await record_change(self._ctx, caller, origin, f"user:{user_id}", details)
                outbox.add(
                    caller.app_id, "user.deactivated", {"user_id": user.id}, user_ids=(user.id,)
                )
        self._ctx.revocations.revoke_subject(caller.app_id, user.id)
        await outbox.publish(self._ctx.broker)
        return user


def _found(user: UserRecord | None) -> UserRecord:
    if user is None:
        raise NotFound("No such user.")
    return user


def _hidden(user: UserRecord | None, user_id: str) -> UserRecord:
    """The user, or a 404 recorded as a ``not_found`` decision (missing, or another app's)."""
    if user is None:
        raise Hidden("No such user.", Denial(f"user:{user_id}", "not_found"))
    return user


class UserResolver:
    """The ``UserDirectory`` token exchange uses: finds the active user a backend names."""

    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx

    async def resolve_user(self, app_id: str, token_type: str, value: str) -> str | None:
        """Return the id of the app's active user named by ``value``, or None."""
        async with self._ctx.db.read() as conn:
            if token_type == rfc8693.USER_ID_TYPE:
                user = await repo.get_user(conn, app_id, value) if is_id(Kind.USER, value) else None
            else:
                user = await repo.get_user_by_external_id(conn, app_id, value)
        return user.id if user is not None and user.active else None


async def load_revocations(
    ctx: ChatContext, loaders: Sequence[Callable[[], Awaitable[None]]] = ()
) -> None:
    """Refuse the tokens of every user deactivated before this process started.

    ``loaders`` read further persisted revocations (such as revoke-before cutoffs)
    before any token is accepted.
    """
    async with ctx.db.read() as conn:
        for app_id, user_id in await cross_tenant.inactive_user_ids(conn):
            ctx.revocations.revoke_subject(app_id, user_id)
    for load in loaders:
        await load()
    ctx.revocations.mark_loaded()


async def keep_loading_revocations(
    ctx: ChatContext,
    retry_seconds: float = 2.0,
    loaders: Sequence[Callable[[], Awaitable[None]]] = (),
) -> None:
    """Load the revocations, retrying while the database is unreachable.

    Tokens are refused (503) until this has succeeded.
    """
    while True:
        try:
            await load_revocations(ctx, loaders)
        except Unavailable:
            await asyncio.sleep(retry_seconds)
        else:
            return
