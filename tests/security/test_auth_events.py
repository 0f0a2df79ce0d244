"""Every authentication step is reported as a security event, without secrets."""

from __future__ import annotations

import re

import httpx
import pyotp

from bastion.observe.events import MemorySink, SecurityEvent
from tests.support.oauth import (
    PASSWORD,
    Browser,
    authorize_params,
    pkce_pair,
    query_of,
    redeem,
    register_client,
    token_call,
    user_with_password,
)
from tests.support.server import ServerThread
from tests.support.tenants import Tenant


def _mine(sink: MemorySink, app_id: str) -> list[SecurityEvent]:
    return [e for e in sink.events if e.actor.app_id == app_id]


async def test_the_login_and_token_lifecycle_is_reported(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """Failure with reason, success, MFA enrol and verify, issue, refresh, revoke."""
    sink = MemorySink()
    server.services.events.add_sink(sink)
    client = await register_client(tenant, require_mfa=True)
    user_id = await user_with_password(tenant, "eve")
    verifier, challenge = pkce_pair()
    params = authorize_params(client, challenge)
    browser = Browser(server.base_url)
    page = await browser.follow(await browser.authorize(**params))
    await browser.submit("/oauth/login", page, username="eve", password="wrong password")
    enrol = await browser.follow(await browser.login("eve", PASSWORD, **params))
    secret = re.search(r'<code id="secret">([A-Z2-7]+)</code>', enrol.text)
    assert secret is not None
    await browser.submit("/oauth/login/enrol", enrol, code="123456")
    shown = await browser.submit(
        "/oauth/login/enrol", enrol, code=pyotp.TOTP(secret.group(1)).now()
    )
    done = await browser.submit("/oauth/login/enrolled", shown)
    await browser.close()
    code = query_of(done.headers["location"])["code"]
    tokens = (await redeem(http, client, code, verifier)).json()
    refresh = {"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]}
    refreshed = (await token_call(http, client, refresh)).json()
    await token_call(http, client, {"token": refreshed["refresh_token"]}, "/oauth/revoke")

    events = _mine(sink, tenant.app_id)
    seen = [(e.action, e.outcome, e.reason) for e in events if e.actor.subject == user_id]
    assert ("auth.login", "failure", "bad_password") in seen
    assert ("auth.login", "success", None) in seen
    assert ("mfa.enrol", "failure", None) in seen
    assert ("mfa.enrol", "success", None) in seen
    assert ("token.issue", "success", None) in seen
    assert ("token.refresh", "success", None) in seen
    assert ("token.revoke", "success", "revoked_by_client") in seen
    changes = [e for e in events if e.action == "admin.change"]
    assert {e.details["change"] for e in changes} >= {"client_registered", "password_set"}
    # No secret, password, code or token is ever part of an event.
    secrets = [PASSWORD, code, tokens["access_token"], tokens["refresh_token"], secret.group(1)]
    for event in events:
        text = repr(event.as_dict())
        assert not any(value in text for value in secrets), event.action
