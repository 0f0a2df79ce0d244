"""Brute-force protection: Keycloak's wait tables, and lockouts through the real server."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bastion.observe.events import MemorySink
from bastion.security import lockout
from bastion.store.records import FailureRecord
from bastion.store.repos import authz as authz_repo
from tests.conftest import Databases, make_settings, start_server
from tests.support.oauth import (
    PASSWORD,
    Browser,
    authorize_params,
    pkce_pair,
    register_client,
    user_with_password,
)
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, new_tenant

T0 = datetime(2027, 1, 1, tzinfo=UTC)
GENERIC = "Invalid username or password."


def policy(**changes: object) -> lockout.Policy:
    """Keycloak's documented example: max 5 failures, 30 s increment."""
    base = {
        "enabled": True,
        "max_failures": 5,
        "ip_max_failures": 20,
        "wait_increment": 30,
        "max_wait": 900,
        "strategy": "multiple",
        "failure_reset": 43_200,
        "quick_login_ms": 0,
        "min_quick_wait": 60,
        "permanent": False,
        "max_temporary_lockouts": 1,
    }
    base.update(changes)
    return lockout.Policy(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("strategy", "failures", "wait"),
    [
        ("multiple", 4, 0),
        ("multiple", 5, 30),
        ("multiple", 9, 30),
        ("multiple", 10, 60),
        ("multiple", 15, 90),
        ("linear", 5, 30),
        ("linear", 6, 60),
        ("linear", 7, 90),
    ],
)
def test_keycloak_wait_tables(strategy: str, failures: int, wait: int) -> None:
    """The waits of Keycloak's brute-force documentation, for both strategies."""
    assert lockout.wait_seconds(policy(strategy=strategy), failures) == wait


def test_the_wait_is_capped() -> None:
    """No temporary wait exceeds max_wait."""
    assert lockout.wait_seconds(policy(max_wait=120), 500) == 120


def _fail(p: lockout.Policy, record: FailureRecord | None, at: datetime) -> FailureRecord:
    return lockout.record_failure(p, record, app_id="app", subject="usr", ip="1.2.3.4", now=at)


def test_counter_locks_freezes_and_resets() -> None:
    """The fifth failure locks; failures while locked do not count; quiet time resets."""
    p = policy()
    record = None
    for i in range(5):
        record = _fail(p, record, T0 + timedelta(seconds=10 * i))
    assert record is not None
    assert lockout.is_locked(record, T0 + timedelta(seconds=41))
    frozen = _fail(p, record, T0 + timedelta(seconds=45))
    assert frozen.num_failures == 5
    assert not lockout.is_locked(record, T0 + timedelta(seconds=71))
    later = _fail(p, record, T0 + timedelta(hours=13))
    assert later.num_failures == 1


def test_quick_failures_impose_the_minimum_wait() -> None:
    """Two failures closer than the quick-login check lock at once (robots)."""
    p = policy(quick_login_ms=1000, min_quick_wait=60)
    first = _fail(p, None, T0)
    second = _fail(p, first, T0 + timedelta(milliseconds=300))
    assert lockout.is_locked(second, T0 + timedelta(seconds=59))
    assert not lockout.is_locked(second, T0 + timedelta(seconds=61))


def test_permanent_lockout_after_temporary_ones() -> None:
    """With permanent lockout on, the lockout after max_temporary_lockouts never ends."""
    p = policy(permanent=True, max_temporary_lockouts=1)
    record = None
    for i in range(5):
        record = _fail(p, record, T0 + timedelta(seconds=i))
    assert record is not None
    assert not record.permanently_locked
    for i in range(5):
        record = _fail(p, record, T0 + timedelta(minutes=5, seconds=i))
    assert record.permanently_locked
    assert lockout.is_locked(record, T0 + timedelta(days=365))


@pytest.fixture(scope="module")
def guarded_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server with small thresholds (3 failures per account, 6 per address) that also
    requires TOTP of app admins."""
    settings = make_settings(
        tmp_path_factory.mktemp("guarded"),
        databases.new(),
        oauth={
            "max_login_failures": 3,
            "ip_max_login_failures": 6,
            "wait_increment_seconds": 300,
            "quick_login_check_ms": 0,
            "require_mfa_roles": ["admin"],
        },
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture
async def guarded(guarded_server: ServerThread) -> AsyncIterator[Tenant]:
    """A fresh app on the guarded server."""
    async with httpx.AsyncClient(base_url=guarded_server.base_url, timeout=15) as client:
        yield new_tenant(guarded_server, client)


async def _attempt(
    server: ServerThread, tenant: Tenant, username: str, password: str, ip: str
) -> httpx.Response:
    client = await register_client(tenant)
    _, challenge = pkce_pair()
    browser = Browser(server.base_url, ip=ip)
    try:
        return await browser.login(username, password, **authorize_params(client, challenge))
    finally:
        await browser.close()


async def test_an_account_locks_after_repeated_failures(
    guarded_server: ServerThread, guarded: Tenant
) -> None:
    """After 3 wrong passwords even the right one is refused, with the same message."""
    sink = MemorySink()
    guarded_server.services.events.add_sink(sink)
    user_id = await user_with_password(guarded, "victor")
    for _ in range(3):
        wrong = await _attempt(guarded_server, guarded, "victor", "wrong password!", "10.0.0.1")
        assert GENERIC in wrong.text
    locked = await _attempt(guarded_server, guarded, "victor", PASSWORD, "10.0.0.2")
    assert locked.status_code == 200
    assert GENERIC in locked.text
    lockouts = [e for e in sink.of("auth.lockout") if e.actor.subject == user_id]
    assert len(lockouts) == 1
    assert lockouts[0].details["scope"] == "account"
    reasons = [e.reason for e in sink.of("auth.login") if e.actor.subject == user_id]
    assert reasons == ["bad_password"] * 3 + ["locked"]
    unlock = await guarded.http.post(
        f"/v1/users/{user_id}/unlock", headers=await guarded.backend_headers()
    )
    assert unlock.status_code == 204
    ok = await _attempt(guarded_server, guarded, "victor", PASSWORD, "10.0.0.3")
    assert ok.status_code == 303


async def test_credential_stuffing_across_accounts_is_blocked(
    guarded_server: ServerThread, guarded: Tenant
) -> None:
    """One address failing across many accounts is stopped, even for a right password."""
    await user_with_password(guarded, "wendy")
    for i in range(6):
        await _attempt(guarded_server, guarded, f"stuffed{i}", "hunter2hunter2", "10.9.9.9")
    blocked = await _attempt(guarded_server, guarded, "wendy", PASSWORD, "10.9.9.9")
    assert GENERIC in blocked.text
    elsewhere = await _attempt(guarded_server, guarded, "wendy", PASSWORD, "10.9.9.10")
    assert elsewhere.status_code == 303


async def test_roles_listed_in_require_mfa_roles_must_use_totp(
    guarded_server: ServerThread, guarded: Tenant
) -> None:
    """An app admin (a role in oauth.require_mfa_roles) is sent to enrolment; a member is not."""
    admin = await user_with_password(guarded, "role-admin")
    await user_with_password(guarded, "role-member")

    async def promote() -> None:
        async with guarded_server.services.db.write() as conn:
            await authz_repo.set_user_roles(
                conn, guarded.app_id, admin, frozenset({"admin"}), datetime.now(UTC)
            )

    guarded_server.run(promote())
    answer = await _attempt(guarded_server, guarded, "role-admin", PASSWORD, "10.7.7.7")
    assert answer.headers["location"].startswith("/oauth/login/enrol?")
    member = await _attempt(guarded_server, guarded, "role-member", PASSWORD, "10.7.7.8")
    assert "code=" in member.headers["location"]
