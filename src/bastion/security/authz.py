"""The authorizer: who holds which app roles, the app's policy, and recorded decisions.

Routes call :meth:`Authorizer.authorize` with the permission they declare; the domain
calls :meth:`Authorizer.holds` for app-wide permissions and :meth:`Authorizer.deny`
when an object-level check refuses. Every denial becomes an ``authz.decision`` event,
which the metrics sink counts in ``bastion_authz_denials_total{reason, permission}``.

Role assignments and policies are read through :class:`AuthzStore` and cached for
``authz.cache_seconds``; a change made through this process drops its cache entry at
once, so only changes made on other nodes wait for the cache to expire.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Generic, Protocol, TypeVar

from bastion.core.errors import Forbidden, InsufficientScope
from bastion.observe.events import Actor, Origin, SecurityEvents
from bastion.security.audit.context import current_origin
from bastion.security.policy import PERMISSIONS, AppRole, Decision, Policy, decide
from bastion.security.principal import Principal

_CACHE_MAX = 100_000
K = TypeVar("K")
V = TypeVar("V")


class AuthzStore(Protocol):
    """What the authorizer needs from storage."""

    async def user_roles(self, app_id: str, user_id: str) -> frozenset[str] | None:
        """The user's assigned roles, or None when none were assigned."""
        ...

    async def policy_overrides(self, app_id: str) -> dict[str, frozenset[str]]:
        """The app's role definitions replacing the defaults."""
        ...


class _Ttl(Generic[K, V]):
    """A small time-bounded cache."""

    def __init__(self, seconds: float, clock: Callable[[], float]) -> None:
        self._seconds = seconds
        self._clock = clock
        self._items: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        found = self._items.get(key)
        if found is None or found[0] < self._clock():
            return None
        return found[1]

    def put(self, key: K, value: V) -> None:
        if self._seconds <= 0:
            return
        if len(self._items) >= _CACHE_MAX:
            self._items.clear()
        self._items[key] = (self._clock() + self._seconds, value)

    def drop(self, key: K) -> None:
        self._items.pop(key, None)


def actor_of(principal: Principal) -> Actor:
    """The event actor for a principal."""
    return Actor(
        app_id=principal.app_id,
        subject=principal.subject,
        client_id=principal.client_id,
        roles=tuple(sorted(principal.roles)),
    )


class Authorizer:
    """Resolves roles and policies and decides, records and counts."""

    def __init__(
        self,
        store: AuthzStore,
        events: SecurityEvents,
        *,
        cache_seconds: float,
        audit_allows: bool,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._store = store
        self._events = events
        self._audit_allows = audit_allows
        self._roles: _Ttl[tuple[str, str], frozenset[str]] = _Ttl(cache_seconds, monotonic)
        self._policies: _Ttl[str, Policy] = _Ttl(cache_seconds, monotonic)

    async def roles_of(self, app_id: str, subject: str, user_id: str | None) -> frozenset[str]:
        """A backend client is ``service``; a user holds what was assigned, else ``member``."""
        if user_id is None:
            return frozenset({AppRole.SERVICE.value})
        key = (app_id, user_id)
        cached = self._roles.get(key)
        if cached is None:
            assigned = await self._store.user_roles(app_id, user_id)
            cached = frozenset({AppRole.MEMBER.value}) if assigned is None else assigned
            self._roles.put(key, cached)
        return cached

    async def policy_of(self, app_id: str) -> Policy:
        """The app's policy: the defaults with its overrides."""
        cached = self._policies.get(app_id)
        if cached is None:
            cached = Policy.with_overrides(await self._store.policy_overrides(app_id))
            self._policies.put(app_id, cached)
        return cached

    def forget_roles(self, app_id: str, user_id: str) -> None:
        """A user's roles changed here: stop using the cached ones."""
        self._roles.drop((app_id, user_id))

    def forget_policy(self, app_id: str) -> None:
        """An app's policy changed here: stop using the cached one."""
        self._policies.drop(app_id)

    async def with_roles(self, principal: Principal) -> Principal:
        """The principal with its current app roles filled in."""
        roles = await self.roles_of(principal.app_id, principal.subject, principal.user_id)
        return dataclasses.replace(principal, roles=roles)

    async def authorize(self, principal: Principal, permission: str, origin: Origin) -> Principal:
        """The route-level check: role and scope must both allow ``permission``.

        Returns the principal with its roles; raises ``InsufficientScope`` (the role
        allows it, the token does not) or ``Forbidden`` (the role does not).
        """
        principal = await self.with_roles(principal)
        policy = await self.policy_of(principal.app_id)
        decision = decide(policy, principal.roles, principal.scopes, permission)
        if not decision.allowed:
            await self.record(principal, permission, None, decision, origin)
            if decision.reason == "insufficient_scope":
                raise InsufficientScope(PERMISSIONS[permission].scope)
            raise Forbidden("Your role does not allow this action.")
        if self._audit_allows and PERMISSIONS[permission].sensitive:
            await self.record(principal, permission, None, decision, origin)
        return principal

    async def holds(self, principal: Principal, permission: str) -> bool:
        """Whether the caller's roles and token allow an app-wide ``permission``."""
        policy = await self.policy_of(principal.app_id)
        return decide(policy, principal.roles, principal.scopes, permission).allowed

    async def deny(
        self,
        principal: Principal,
        action: str,
        resource: str | None,
        reason: str,
        origin: Origin | None = None,
    ) -> None:
        """Record an object-level denial (the caller raises the error).

        Without ``origin``, the request the running task serves supplies it (the domain
        knows no requests; the audit context does).
        """
        await self.record(
            principal, action, resource, Decision(False, reason), origin or current_origin()
        )

    async def record(
        self,
        principal: Principal,
        permission: str,
        resource: str | None,
        decision: Decision,
        origin: Origin,
    ) -> None:
        """Emit an ``authz.decision`` event (the metrics sink counts the denials)."""
        await self._events.emit(
            "authz.decision",
            "allowed" if decision.allowed else "denied",
            actor=actor_of(principal),
            origin=origin,
            resource=resource,
            reason=decision.reason,
            details={"permission": permission, "scopes": " ".join(sorted(principal.scopes))},
        )
