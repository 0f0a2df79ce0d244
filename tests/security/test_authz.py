"""The authorizer over an in-memory store: role resolution, caching, decisions, events."""

from __future__ import annotations

import pytest

from bastion.core.clock import SystemClock
from bastion.core.errors import Forbidden, InsufficientScope
from bastion.observe.events import MemorySink, Origin, SecurityEvents
from bastion.security.authz import Authorizer
from bastion.security.principal import Principal

APP = "app_01J5ZZZZZZZZZZZZZZZZZZZZZZ"
USER = "usr_01J5ZZZZZZZZZZZZZZZZZZZZZZ"


class Store:
    """Role assignments and policy overrides in memory, counting reads."""

    def __init__(self) -> None:
        self.roles: dict[tuple[str, str], frozenset[str]] = {}
        self.overrides: dict[str, frozenset[str]] = {}
        self.reads = 0

    async def user_roles(self, app_id: str, user_id: str) -> frozenset[str] | None:
        """The assigned roles, if any."""
        self.reads += 1
        return self.roles.get((app_id, user_id))

    async def policy_overrides(self, app_id: str) -> dict[str, frozenset[str]]:
        """The app's overrides."""
        self.reads += 1
        return dict(self.overrides)


def principal(subject: str = USER, scope: str = "chat:read chat:write admin:read") -> Principal:
    """A token's principal, before roles are resolved."""
    return Principal(
        app_id=APP,
        client_id="cli_01J5ZZZZZZZZZZZZZZZZZZZZZZ",
        subject=subject,
        scopes=frozenset(scope.split()),
        token_id="tok_1",
        expires_at=0,
    )


def build(*, audit_allows: bool = False, cache: float = 60) -> tuple[Authorizer, Store, MemorySink]:
    """An authorizer over a fresh store, with its events kept in memory."""
    store, sink = Store(), MemorySink()
    events = SecurityEvents(SystemClock(), [sink])
    return Authorizer(store, events, cache_seconds=cache, audit_allows=audit_allows), store, sink


async def test_users_default_to_member_and_backends_are_service() -> None:
    """No assignment means member; a client subject is always service."""
    authz, _, _ = build()
    assert (await authz.with_roles(principal())).roles == {"member"}
    backend = principal(subject="cli_01J5ZZZZZZZZZZZZZZZZZZZZZZ")
    assert (await authz.with_roles(backend)).roles == {"service"}


async def test_denials_are_recorded_with_the_reason() -> None:
    """A missing role permission is 403 forbidden; a missing scope is insufficient_scope."""
    authz, _, sink = build()
    with pytest.raises(Forbidden) as refused:
        await authz.authorize(principal(), "policy:read", Origin())
    assert not isinstance(refused.value, InsufficientScope)
    with pytest.raises(InsufficientScope):
        await authz.authorize(principal(scope="chat:read"), "message:send", Origin())
    reasons = [(e.outcome, e.reason, e.details["permission"]) for e in sink.of("authz.decision")]
    assert reasons == [
        ("denied", "role_lacks_permission", "policy:read"),
        ("denied", "insufficient_scope", "message:send"),
    ]


async def test_allows_of_sensitive_permissions_are_recorded_only_when_configured() -> None:
    """audit_allows adds an allowed event for sensitive permissions, not ordinary ones."""
    for configured in (False, True):
        authz, store, sink = build(audit_allows=configured)
        store.roles[(APP, USER)] = frozenset({"admin"})
        await authz.authorize(principal(), "role:read", Origin())
        await authz.authorize(principal(), "message:read", Origin())
        allowed = [e.details["permission"] for e in sink.of("authz.decision")]
        assert allowed == (["role:read"] if configured else [])


async def test_roles_are_cached_until_forgotten() -> None:
    """A change made here applies at once (forget); other changes wait for the cache."""
    authz, store, _ = build()
    await authz.with_roles(principal())
    store.roles[(APP, USER)] = frozenset({"auditor"})
    assert (await authz.with_roles(principal())).roles == {"member"}
    authz.forget_roles(APP, USER)
    assert (await authz.with_roles(principal())).roles == {"auditor"}


async def test_no_cache_reads_every_time() -> None:
    """cache_seconds = 0 reads the store on every request."""
    authz, store, _ = build(cache=0)
    for _ in range(3):
        await authz.with_roles(principal())
    assert store.reads == 3
