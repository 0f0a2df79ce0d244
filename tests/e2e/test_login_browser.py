"""The login, TOTP enrolment, TOTP and consent pages in real headless Chromium.

Playwright drives Debian's ``/usr/bin/chromium`` (``.ci/run`` installs it when
missing). The pages must work without any script and without breaking their own
Content-Security-Policy.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pyotp
import pytest
from playwright.async_api import Browser, Page, async_playwright

from tests.conftest import Databases, make_settings, start_server
from tests.support.oauth import (
    authorize_params,
    pkce_pair,
    query_of,
    register_client,
    user_with_password,
)
from tests.support.roles import user_with_roles
from tests.support.server import ServerThread
from tests.support.tenants import Tenant, new_tenant

CHROMIUM = Path("/usr/bin/chromium")
_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="chromium is not installed: apt-get install -y chromium"
    ),
]


@pytest.fixture(scope="module")
def server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server of its own: a browser starting up slows everything, and the shared
    server's load shedding must not learn from that."""
    running = start_server(make_settings(tmp_path_factory.mktemp("browser"), databases.new()))
    yield running
    running.stop()


@pytest.fixture
async def tenant(server: ServerThread) -> AsyncIterator[Tenant]:
    """A fresh app on this module's server."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=15) as client:
        yield new_tenant(server, client)


@pytest.fixture
async def chromium() -> AsyncIterator[Browser]:
    """A headless Chromium."""
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), headless=True, args=_FLAGS
        )
        yield browser
        await browser.close()


def _watch_csp(page: Page) -> list[str]:
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    return violations


async def test_password_enrolment_totp_and_consent_in_chromium(
    server: ServerThread, tenant: Tenant, chromium: Browser
) -> None:
    """A third-party client requiring MFA: every page works in a real browser."""
    callback = f"{server.base_url}/callback"
    client = await register_client(
        tenant, redirect_uris=[callback], first_party=False, require_mfa=True
    )
    await user_with_password(tenant, "browser-user")
    _, challenge = pkce_pair()
    params = authorize_params(client, challenge)
    context = await chromium.new_context()
    page = await context.new_page()
    violations = _watch_csp(page)

    await page.goto(f"{server.base_url}/oauth/authorize?{urlencode(params)}")
    assert await page.text_content("#client-name") == "Test web app"
    await page.fill("#username", "browser-user")
    await page.fill("#password", "not the password")
    await page.click("#submit")
    assert await page.text_content("#error") == "Invalid username or password."
    await page.fill("#username", "browser-user")
    await page.fill("#password", "correct horse battery staple")
    await page.click("#submit")

    assert await page.locator("#qr svg").count() == 1
    secret = (await page.text_content("#secret") or "").strip()
    totp = pyotp.TOTP(secret)
    await page.fill("#code", totp.now())
    await page.click("#submit")
    assert await page.locator("#recovery-codes li").count() == 10
    await page.click("#continue")

    assert "chat:read" in (await page.text_content("#scopes") or "")
    await page.click("#allow")
    await page.wait_for_url(f"{callback}?*")
    query = query_of(page.url)
    assert query["state"] == params["state"]
    assert query["code"]

    # A second browser profile: password, then a TOTP code, and no consent screen again.
    fresh = await chromium.new_context()
    second = await fresh.new_page()
    violations += _watch_csp(second)
    await second.goto(f"{server.base_url}/oauth/authorize?{urlencode(params)}")
    await second.fill("#username", "browser-user")
    await second.fill("#password", "correct horse battery staple")
    await second.click("#submit")
    await second.fill("#code", totp.at(time.time() + 30))
    await second.click("#submit")
    await second.wait_for_url(f"{callback}?*")
    assert query_of(second.url)["code"]
    assert violations == []
    await context.close()
    await fresh.close()


async def test_the_login_page_cannot_be_framed(
    server: ServerThread, tenant: Tenant, chromium: Browser
) -> None:
    """frame-ancestors 'none': a page that frames the login form gets nothing."""
    client = await register_client(tenant)
    _, challenge = pkce_pair()
    url = f"{server.base_url}/oauth/authorize?{urlencode(authorize_params(client, challenge))}"
    context = await chromium.new_context()
    page = await context.new_page()
    await page.set_content(f'<iframe id="f" src="{url}" width="400" height="400"></iframe>')
    await page.wait_for_timeout(500)
    frame = page.frame_locator("#f")
    assert await frame.locator("#username").count() == 0
    await context.close()


async def test_the_app_mfa_policy_sends_the_browser_to_enrolment(
    server: ServerThread, tenant: Tenant, chromium: Browser
) -> None:
    """An app policy requiring TOTP of everyone: after the password, a client that does
    not ask for MFA still shows the enrolment page, and the browser gets no code."""
    admin = await user_with_roles(tenant, "policy-admin", "admin")
    body = {"required_for_everyone": True, "required_roles": []}
    set_policy = await tenant.http.put("/v1/admin/mfa-policy", json=body, headers=admin.headers)
    assert set_policy.status_code == 200, set_policy.text
    callback = f"{server.base_url}/callback"
    client = await register_client(tenant, redirect_uris=[callback])
    await user_with_password(tenant, "policy-user")
    _, challenge = pkce_pair()
    context = await chromium.new_context()
    page = await context.new_page()
    violations = _watch_csp(page)
    await page.goto(
        f"{server.base_url}/oauth/authorize?{urlencode(authorize_params(client, challenge))}"
    )
    await page.fill("#username", "policy-user")
    await page.fill("#password", "correct horse battery staple")
    await page.click("#submit")
    assert "/oauth/login/enrol" in page.url
    assert await page.locator("#qr svg").count() == 1
    assert not page.url.startswith(callback)
    assert violations == []
    await context.close()
