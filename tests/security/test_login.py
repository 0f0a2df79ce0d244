"""The login pages over HTTP: password policy, TOTP enrolment and use, consent, logout."""

from __future__ import annotations

import re
import time

import httpx
import pyotp

from tests.support.oauth import (
    Browser,
    authorize_params,
    pkce_pair,
    query_of,
    register_client,
    user_with_password,
)
from tests.support.server import ServerThread
from tests.support.tenants import Tenant


async def _set_login(tenant: Tenant, user_id: str, username: str, password: str) -> httpx.Response:
    return await tenant.http.put(
        f"/v1/users/{user_id}/login",
        json={"username": username, "password": password},
        headers=await tenant.backend_headers(),
    )


async def test_password_policy(tenant: Tenant) -> None:
    """Too short, common, equal to the username: 422; a 64+ character pass phrase: fine."""
    user = await tenant.user("pat")
    for password in ("short7!", "password1", "qwertyuiop", "pat-the-user", "Pat-The-User"):
        response = await _set_login(tenant, user.id, "pat-the-user", password)
        assert response.status_code == 422, password
        assert response.json()["errors"][0]["field"] == "body.password"
    long_phrase = "a sentence that is much longer than sixty-four characters, with ✓ symbols"
    assert len(long_phrase) > 64
    assert (await _set_login(tenant, user.id, "pat", long_phrase)).status_code == 204
    too_long = "x" * 129
    assert (await _set_login(tenant, user.id, "pat", too_long)).status_code == 422


async def test_usernames_are_unique_per_app(tenant: Tenant) -> None:
    """A username another user holds is 409."""
    await user_with_password(tenant, "quinn")
    other = await tenant.user("quinn2")
    response = await _set_login(tenant, other.id, "QUINN", "a long enough pass phrase")
    assert response.status_code == 409


async def test_pages_carry_no_script_and_a_closed_policy(
    server: ServerThread, tenant: Tenant
) -> None:
    """CSP default-src 'none', frame-ancestors 'none', DENY framing, no-store, no <script>."""
    client = await register_client(tenant)
    browser = Browser(server.base_url)
    _, challenge = pkce_pair()
    page = await browser.follow(await browser.authorize(**authorize_params(client, challenge)))
    await browser.close()
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    (policy,) = page.headers.get_list("content-security-policy")
    assert "default-src 'none'" in policy
    assert "frame-ancestors 'none'" in policy
    # The form may post here and be redirected to the client, nowhere else.
    assert "form-action 'self' https://app.example.com;" in policy + ";"
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"
    assert "<script" not in page.text.lower()
    assert " style=" not in page.text.lower()
    assert 'name="csrf"' in page.text
    cookie = page.headers.get("set-cookie") or ""
    assert cookie == "" or "httponly" in cookie.lower()


async def test_a_form_without_the_right_csrf_token_is_refused(
    server: ServerThread, tenant: Tenant
) -> None:
    """A login post with a wrong CSRF token, or from another browser, logs nobody in."""
    client = await register_client(tenant)
    await user_with_password(tenant, "rita")
    browser = Browser(server.base_url)
    _, challenge = pkce_pair()
    page = await browser.follow(await browser.authorize(**authorize_params(client, challenge)))
    forged = await browser.submit(
        "/oauth/login",
        page,
        csrf="forged",
        username="rita",
        password="correct horse battery staple",
    )
    assert forged.status_code == 400
    # Another browser (no cookie binding) with the right hidden fields.
    stranger = Browser(server.base_url)
    stolen = await stranger.submit(
        "/oauth/login", page, username="rita", password="correct horse battery staple"
    )
    assert stolen.status_code == 400
    await browser.close()
    await stranger.close()


def _secret(html: str) -> str:
    found = re.search(r'<code id="secret">([A-Z2-7]+)</code>', html)
    assert found is not None
    return found.group(1)


async def test_required_mfa_enrols_then_asks_for_codes(
    server: ServerThread, tenant: Tenant
) -> None:
    """A require_mfa client: enrol with QR and first code, get recovery codes, then TOTP."""
    client = await register_client(tenant, require_mfa=True)
    await user_with_password(tenant, "sam")
    _, challenge = pkce_pair()
    browser = Browser(server.base_url)
    answer = await browser.login("sam", **authorize_params(client, challenge))
    enrol = await browser.follow(answer)
    assert "<svg" in enrol.text
    secret = _secret(enrol.text)
    totp = pyotp.TOTP(secret)
    wrong = await browser.submit("/oauth/login/enrol", enrol, code="000000")
    assert "not valid" in wrong.text
    shown = await browser.submit("/oauth/login/enrol", enrol, code=totp.now())
    codes = re.findall(r"<li><code>([a-z0-9-]+)</code></li>", shown.text)
    assert len(codes) == 10
    done = await browser.submit("/oauth/login/enrolled", shown)
    assert done.headers["location"].startswith(client.redirect_uri + "?code=")
    await browser.close()

    # A new browser: password, then the TOTP of the next time step, then a recovery code.
    fresh = Browser(server.base_url)
    step = await fresh.follow(await fresh.login("sam", **authorize_params(client, challenge)))
    assert 'action="/oauth/login/mfa"' in step.text
    ok = await fresh.submit("/oauth/login/mfa", step, code=totp.at(time.time() + 30))
    assert ok.headers["location"].startswith(client.redirect_uri + "?code=")
    await fresh.close()
    again = Browser(server.base_url)
    step = await again.follow(await again.login("sam", **authorize_params(client, challenge)))
    replayed = await again.submit("/oauth/login/mfa", step, code=totp.at(time.time() + 30))
    assert "not valid" in replayed.text
    recovered = await again.submit("/oauth/login/mfa", step, code=codes[0])
    assert recovered.headers["location"].startswith(client.redirect_uri + "?code=")
    await again.close()


async def test_third_party_clients_ask_for_consent_once(
    server: ServerThread, tenant: Tenant
) -> None:
    """Deny returns access_denied (and opens no session); allow returns a code, remembered."""
    client = await register_client(tenant, first_party=False)
    await user_with_password(tenant, "tess")
    _, challenge = pkce_pair()
    browser = Browser(server.base_url)
    params = authorize_params(client, challenge)
    consent = await browser.follow(await browser.login("tess", **params))
    assert "chat:read" in consent.text
    denied = await browser.submit("/oauth/login/consent", consent, decision="deny")
    assert query_of(denied.headers["location"])["error"] == "access_denied"
    again = await browser.follow(await browser.login("tess", **params))
    allowed = await browser.submit("/oauth/login/consent", again, decision="allow")
    assert "code" in query_of(allowed.headers["location"])
    third = await browser.authorize(**params)
    assert "code" in query_of(third.headers["location"])
    await browser.close()


async def test_logout_ends_the_session(server: ServerThread, tenant: Tenant) -> None:
    """After logout the next authorization request shows the login page again."""
    client = await register_client(tenant)
    await user_with_password(tenant, "uma")
    _, challenge = pkce_pair()
    browser = Browser(server.base_url)
    params = authorize_params(client, challenge)
    await browser.login("uma", **params)
    assert "code=" in (await browser.authorize(**params)).headers["location"]
    page = await browser.http.get(
        "/oauth/logout",
        params={"client_id": client.id, "post_logout_redirect_uri": client.redirect_uri},
    )
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert csrf is not None
    forged = await browser.http.post("/oauth/logout", data={"csrf": "nope"})
    assert forged.status_code == 400
    done = await browser.http.post(
        "/oauth/logout",
        data={
            "csrf": csrf.group(1),
            "client_id": client.id,
            "post_logout_redirect_uri": client.redirect_uri,
        },
    )
    assert done.headers["location"].startswith(client.redirect_uri)
    assert (await browser.authorize(**params)).headers["location"].startswith("/oauth/login?")
    await browser.close()


async def test_the_app_can_require_totp_for_one_user(server: ServerThread, tenant: Tenant) -> None:
    """PUT /v1/users/{id}/mfa {"required": true}: that user enrols at the next login."""
    client = await register_client(tenant)
    user_id = await user_with_password(tenant, "vera")
    headers = await tenant.backend_headers()
    required = await tenant.http.put(
        f"/v1/users/{user_id}/mfa", json={"required": True}, headers=headers
    )
    assert required.status_code == 204
    _, challenge = pkce_pair()
    browser = Browser(server.base_url)
    answer = await browser.login("vera", **authorize_params(client, challenge))
    assert answer.headers["location"].startswith("/oauth/login/enrol?")
    await browser.close()
    nobody = await tenant.user("no-login")
    missing = await tenant.http.put(
        f"/v1/users/{nobody.id}/mfa", json={"required": True}, headers=headers
    )
    assert missing.status_code == 404
