"""App roles and the app's policy, managed through the admin API.

Every change is validated against the granter's own permissions (nobody grants what
they do not hold) and recorded as an ``admin.change`` security event with who, what,
before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bastion.chat.access import role_read_changes
from bastion.chat.context import ChatContext, Outbox, record_change
from bastion.chat.live import announce_access
from bastion.core.clock import Clock
from bastion.core.errors import FieldError, Forbidden, NotFound, ValidationFailed
from bastion.observe.events import Origin
from bastion.security.policy import (
    AppRole,
    Escalation,
    Policy,
    PolicyViolation,
    check_role_assignment,
    check_role_definition,
)
from bastion.security.principal import Principal
from bastion.store.db import Database
from bastion.store.repos import authz as repo
from bastion.store.repos import users as user_repo

DEFAULT_ROLES = frozenset({AppRole.MEMBER.value})


@dataclass(frozen=True, slots=True)
class Assignment:
    """A user's app roles; ``assigned`` is False when they hold the default."""

    user_id: str
    roles: frozenset[str]
    assigned: bool


def _joined(values: frozenset[str]) -> str:
    return " ".join(sorted(values))


class AppRoles:
    """Role assignments and per-app role definitions."""

    def __init__(self, ctx: ChatContext) -> None:
        self._ctx = ctx

    async def get(self, caller: Principal, user_id: str) -> Assignment:
        """One user's roles."""
        async with self._ctx.db.read() as conn:
            if await user_repo.get_user(conn, caller.app_id, user_id) is None:
                raise NotFound("No such user.")
            roles = await repo.get_user_roles(conn, caller.app_id, user_id)
        return Assignment(user_id, roles or DEFAULT_ROLES, roles is not None)

    async def page(
        self, caller: Principal, *, after: str | None, limit: int
    ) -> tuple[list[Assignment], bool]:
        """Users with assigned roles, by user id, and whether more follow."""
        async with self._ctx.db.read() as conn:
            rows = await repo.list_role_holders(conn, caller.app_id, after=after, limit=limit + 1)
        return [Assignment(uid, roles, True) for uid, roles in rows[:limit]], len(rows) > limit

    async def assign(
        self, caller: Principal, user_id: str, roles: frozenset[str], origin: Origin
    ) -> Assignment:
        """Replace a user's roles, within what the caller may grant. Where an ACL names
        one of the roles changed, the user may start or stop reading a channel: their
        live subscriptions follow."""
        policy = await self._ctx.authz.policy_of(caller.app_id)
        outbox = Outbox()
        async with self._ctx.db.write() as conn:
            if await user_repo.get_user(conn, caller.app_id, user_id) is None:
                raise NotFound("No such user.")
            before = await repo.get_user_roles(conn, caller.app_id, user_id) or DEFAULT_ROLES
            await self._check(
                caller,
                origin,
                f"user:{user_id}",
                "role:manage",
                lambda: check_role_assignment(policy, caller.roles, before, roles),
            )
            await repo.set_user_roles(conn, caller.app_id, user_id, roles, self._ctx.clock.now())
            # Inside the transaction: the audit log records the change with it, or neither.
            await self._changed(caller, origin, f"user:{user_id}", "role.assign", before, roles)
            now = self._ctx.clock.now()
            gained, lost = await role_read_changes(conn, caller.app_id, user_id, before, roles, now)
        self._ctx.authz.forget_roles(caller.app_id, user_id)
        for channel_id in gained:
            announce_access(outbox, caller.app_id, channel_id, [user_id], [])
        for channel_id in lost:
            announce_access(outbox, caller.app_id, channel_id, [], [user_id])
        await outbox.publish(self._ctx.broker)
        return Assignment(user_id, roles, True)

    async def policy(self, caller: Principal) -> tuple[Policy, frozenset[str]]:
        """The app's effective policy and the roles it has customised."""
        async with self._ctx.db.read() as conn:
            overrides = await repo.get_policy_overrides(conn, caller.app_id)
        return Policy.with_overrides(overrides), frozenset(overrides)

    async def define(
        self, caller: Principal, role: str, permissions: frozenset[str], origin: Origin
    ) -> frozenset[str]:
        """Define or redefine a role for this app, within what the caller holds."""
        policy = await self._ctx.authz.policy_of(caller.app_id)
        before = policy.grants.get(role, frozenset())
        await self._check(
            caller,
            origin,
            f"role:{role}",
            "policy:manage",
            lambda: check_role_definition(policy, caller.roles, role, permissions),
        )
        wanted = frozenset(permissions)
        async with self._ctx.db.write() as conn:
            await repo.set_policy_role(conn, caller.app_id, role, wanted, self._ctx.clock.now())
            await self._changed(caller, origin, f"role:{role}", "policy.define", before, wanted)
        self._ctx.authz.forget_policy(caller.app_id)
        return wanted

    async def reset(self, caller: Principal, role: str, origin: Origin) -> None:
        """Drop the app's definition of a role: built-in roles return to their default."""
        policy = await self._ctx.authz.policy_of(caller.app_id)
        before = policy.grants.get(role, frozenset())

        default = Policy.default().grants.get(role, frozenset())
        # Resetting may widen a role as much as redefining it: the same rule applies.
        await self._check(
            caller,
            origin,
            f"role:{role}",
            "policy:manage",
            lambda: check_role_definition(policy, caller.roles, role, default),
        )
        async with self._ctx.db.write() as conn:
            if not await repo.delete_policy_role(conn, caller.app_id, role):
                raise NotFound("This app has not customised that role.")
            await self._changed(caller, origin, f"role:{role}", "policy.reset", before, default)
        self._ctx.authz.forget_policy(caller.app_id)

    async def _check(
        self,
        caller: Principal,
        origin: Origin,
        resource: str,
        action: str,
        check: Callable[[], object],
    ) -> None:
        """Run a policy check; an escalation is a recorded 403, anything else a 422."""
        try:
            check()
        except Escalation as exc:
            await self._ctx.authz.deny(caller, action, resource, "escalation", origin)
            raise Forbidden(exc.message) from None
        except PolicyViolation as exc:
            raise ValidationFailed([FieldError(exc.field, exc.message)]) from None

    async def _changed(
        self,
        caller: Principal,
        origin: Origin,
        resource: str,
        what: str,
        before: frozenset[str],
        after: frozenset[str],
    ) -> None:
        details = {"change": what, "before": _joined(before), "after": _joined(after)}
        await record_change(self._ctx, caller, origin, resource, details)


async def grant_as_operator(
    db: Database, clock: Clock, app_id: str, user_id: str, roles: frozenset[str]
) -> None:
    """Assign roles as the operator (from the command line, to make the first admin)."""
    unknown = roles - set(Policy.default().grants) - {AppRole.SERVICE.value}
    async with db.write() as conn:
        if await user_repo.get_user(conn, app_id, user_id) is None:
            raise NotFound("No such user in this app.")
        overrides = await repo.get_policy_overrides(conn, app_id)
        if unknown - set(overrides) or AppRole.SERVICE.value in roles:
            raise ValidationFailed([FieldError("roles", "Unknown or unassignable role.")])
        await repo.set_user_roles(conn, app_id, user_id, roles, clock.now())
