"""Per-app MFA policy through the admin API, enforced at login, over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from bastion.observe.events import MemorySink
from tests.conftest import Databases, make_settings, start_server
from tests.support.oauth import (
    Browser,
    RegisteredClient,
    authorize_params,
    pkce_pair,
    query_of,
    register_client,
    user_with_password,
)
from tests.support.roles import grant, user_with_roles
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, User, new_tenant

URL = "/v1/admin/mfa-policy"
NOBODY = {"required_for_everyone": False, "required_roles": []}


async def _put(tenant: Tenant, admin: User, body: dict[str, Any]) -> httpx.Response:
    return await tenant.http.put(URL, json=body, headers=admin.headers)


async def _login(server: ServerThread, client: RegisteredClient, username: str) -> str:
    """Log in through the pages; the Location the login form answers with."""
    _, challenge = pkce_pair()
    browser = Browser(server.base_url)
    try:
        answer = await browser.login(username, **authorize_params(client, challenge))
    finally:
        await browser.close()
    assert answer.status_code == 303, answer.text
    location: str = answer.headers["location"]
    return location


def _sent_to_enrolment(location: str) -> bool:
    return location.startswith("/oauth/login/enrol?") and "code=" not in location


async def test_the_policy_is_read_set_and_audited(server: ServerThread, tenant: Tenant) -> None:
    """Default: nobody; PUT replaces it and records before and after as admin.change."""
    events = MemorySink()
    server.services.events.add_sink(events)
    admin = await user_with_roles(tenant, "mfa-admin", "admin")
    initial = await tenant.http.get(URL, headers=admin.headers)
    assert initial.status_code == 200
    assert initial.json() == {**NOBODY, "server_floor": NOBODY, "effective": NOBODY}
    changed = await _put(
        tenant, admin, {"required_for_everyone": False, "required_roles": ["admin"]}
    )
    assert changed.status_code == 200, changed.text
    assert changed.json()["effective"] == {
        "required_for_everyone": False,
        "required_roles": ["admin"],
    }
    again = await _put(tenant, admin, {"required_for_everyone": True})
    assert again.json()["required_for_everyone"] is True
    (event,) = [e for e in events.of("admin.change") if e.details.get("after") == "everyone"]
    assert event.actor.subject == admin.id
    assert event.resource == f"app:{tenant.app_id}"
    assert event.details == {
        "change": "mfa_policy",
        "before": "roles:admin",
        "after": "everyone",
        "floor": "none",
    }
    assert (await tenant.http.get(URL, headers=admin.headers)).json()["required_for_everyone"]


@pytest.mark.parametrize("role", ["no-such-role", "service"])
async def test_a_role_the_app_does_not_define_is_refused(tenant: Tenant, role: str) -> None:
    """422 naming the field; the stored policy is unchanged."""
    admin = await user_with_roles(tenant, "mfa-admin2", "admin")
    refused = await _put(tenant, admin, {"required_for_everyone": False, "required_roles": [role]})
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["field"] == "body.required_roles"
    assert (await tenant.http.get(URL, headers=admin.headers)).json()["required_roles"] == []


async def test_a_moderator_cannot_lower_the_policy(tenant: Tenant) -> None:
    """mfa:manage is an admin permission: anyone else gets 403 and changes nothing."""
    admin = await user_with_roles(tenant, "mfa-admin3", "admin")
    mod = await user_with_roles(tenant, "mfa-mod", "moderator")
    assert (await _put(tenant, admin, {"required_for_everyone": True})).status_code == 200
    assert (await _put(tenant, mod, NOBODY)).status_code == 403
    assert (await tenant.http.get(URL, headers=admin.headers)).json()["required_for_everyone"]


async def test_everyone_must_enrol_before_any_code_even_with_a_session(
    server: ServerThread, tenant: Tenant
) -> None:
    """A user with a browser session from before the policy gets no code: the next
    authorization request sends them to TOTP enrolment."""
    admin = await user_with_roles(tenant, "mfa-admin4", "admin")
    client = await register_client(tenant)
    await user_with_password(tenant, "wanda")
    _, challenge = pkce_pair()
    params = authorize_params(client, challenge)
    browser = Browser(server.base_url)
    try:
        before = await browser.login("wanda", **params)
        assert before.headers["location"].startswith(client.redirect_uri + "?code=")
        assert (await _put(tenant, admin, {"required_for_everyone": True})).status_code == 200
        again = await browser.authorize(**params)
        assert again.status_code == 303
        assert _sent_to_enrolment(again.headers["location"]), again.headers["location"]
    finally:
        await browser.close()
    assert _sent_to_enrolment(await _login(server, client, "wanda"))


async def test_a_role_policy_applies_to_that_role_only(
    server: ServerThread, tenant: Tenant
) -> None:
    """required_roles [moderator]: a moderator enrols, a member gets a code."""
    admin = await user_with_roles(tenant, "mfa-admin5", "admin")
    client = await register_client(tenant)
    moderator = await user_with_password(tenant, "xena")
    grant(tenant, moderator, "moderator")
    await user_with_password(tenant, "yusuf")
    body = {"required_for_everyone": False, "required_roles": ["moderator"]}
    assert (await _put(tenant, admin, body)).status_code == 200
    assert _sent_to_enrolment(await _login(server, client, "xena"))
    member = await _login(server, client, "yusuf")
    assert "code" in query_of(member)


@pytest.fixture(scope="module")
def floored(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server whose settings require TOTP of every moderator, in every app."""
    settings = make_settings(
        tmp_path_factory.mktemp("mfa-floor"),
        databases.new(),
        oauth={"require_mfa_roles": ["moderator"]},
    )
    node = start_server(settings)
    yield node
    node.stop()


@pytest.fixture
async def floored_tenant(floored: ServerThread) -> AsyncIterator[Tenant]:
    """An app on the floored server."""
    async with httpx.AsyncClient(base_url=floored.base_url, timeout=15) as http:
        yield new_tenant(floored, http)


async def test_the_server_floor_cannot_be_lowered(
    floored: ServerThread, floored_tenant: Tenant
) -> None:
    """The app's rule says nobody; the server's says moderators: moderators still enrol."""
    tenant = floored_tenant
    admin = await user_with_roles(tenant, "floor-admin", "admin")
    answer = await _put(tenant, admin, NOBODY)
    assert answer.status_code == 200
    floor = {"required_for_everyone": False, "required_roles": ["moderator"]}
    assert answer.json() == {**NOBODY, "server_floor": floor, "effective": floor}
    client = await register_client(tenant)
    moderator = await user_with_password(tenant, "zora")
    grant(tenant, moderator, "moderator")
    assert _sent_to_enrolment(await _login(floored, client, "zora"))
