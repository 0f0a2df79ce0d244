"""Driving the authorization server as a client app and a browser would, over HTTP."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from tests.support.tenants import Tenant

CALLBACK = "https://app.example.com/callback"
PASSWORD = "correct horse battery staple"
_HIDDEN = re.compile(r'name="(interaction|csrf)" value="([^"]+)"')


def pkce_pair() -> tuple[str, str]:
    """A fresh RFC 7636 verifier and its S256 challenge."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(slots=True)
class RegisteredClient:
    """A client registered through the admin API."""

    id: str
    secret: str | None
    redirect_uri: str
    body: dict[str, Any]


async def register_client(tenant: Tenant, **fields: Any) -> RegisteredClient:
    """Register a client as the app backend (default: confidential, code flow)."""
    body: dict[str, Any] = {
        "name": "Test web app",
        "redirect_uris": [CALLBACK],
        "first_party": True,
        **fields,
    }
    response = await tenant.http.post(
        "/v1/clients", json=body, headers=await tenant.backend_headers()
    )
    assert response.status_code == 201, response.text
    created = response.json()
    return RegisteredClient(
        created["id"],
        created.get("client_secret"),
        (body["redirect_uris"] or [""])[0],
        created,
    )


async def user_with_password(tenant: Tenant, username: str, password: str = PASSWORD) -> str:
    """Create a user and give them a login; returns the user id."""
    user = await tenant.user(username)
    response = await tenant.http.put(
        f"/v1/users/{user.id}/login",
        json={"username": username, "password": password},
        headers=await tenant.backend_headers(),
    )
    assert response.status_code == 204, response.text
    return user.id


def form_fields(html: str) -> dict[str, str]:
    """The interaction id and CSRF token hidden in a login-flow page."""
    return dict(_HIDDEN.findall(html))


def query_of(location: str) -> dict[str, str]:
    """The single-valued query parameters of a redirect."""
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


class Browser:
    """A cookie-keeping HTTP client that walks the login pages like a user."""

    def __init__(self, base_url: str, ip: str | None = None) -> None:
        headers = {"X-Forwarded-For": ip} if ip else {}
        self.http = httpx.AsyncClient(
            base_url=base_url, follow_redirects=False, timeout=15, headers=headers
        )

    async def close(self) -> None:
        """Close the client."""
        await self.http.aclose()

    async def authorize(self, **params: str) -> httpx.Response:
        """GET the authorization endpoint."""
        return await self.http.get("/oauth/authorize?" + urlencode(params))

    async def follow(self, response: httpx.Response) -> httpx.Response:
        """Follow one local 303."""
        assert response.status_code == 303, response.text
        return await self.http.get(response.headers["location"])

    async def submit(self, path: str, page: httpx.Response, **fields: str) -> httpx.Response:
        """Post a form of a page, with its hidden interaction and CSRF fields."""
        return await self.http.post(path, data={**form_fields(page.text), **fields})

    async def login(self, username: str, password: str = PASSWORD, **params: str) -> httpx.Response:
        """Authorize and log in; returns the answer to the login form."""
        page = await self.follow(await self.authorize(**params))
        assert page.status_code == 200, page.text
        return await self.submit("/oauth/login", page, username=username, password=password)


def authorize_params(client: RegisteredClient, challenge: str, **extra: str) -> dict[str, str]:
    """A valid authorization request for ``client``."""
    return {
        "response_type": "code",
        "client_id": client.id,
        "redirect_uri": client.redirect_uri,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": secrets.token_urlsafe(12),
        "scope": "chat:read chat:write",
        **extra,
    }


async def obtain_code(
    base_url: str, client: RegisteredClient, username: str, **extra: str
) -> tuple[str, str, dict[str, str]]:
    """Log in through the pages and return (code, verifier, the authorization request)."""
    verifier, challenge = pkce_pair()
    params = authorize_params(client, challenge, **extra)
    browser = Browser(base_url)
    try:
        answer = await browser.login(username, **params)
    finally:
        await browser.close()
    assert answer.status_code == 303, answer.text
    location = answer.headers["location"]
    assert location.startswith(client.redirect_uri + "?"), location
    query = query_of(location)
    assert query["state"] == params["state"]
    return query["code"], verifier, params


async def redeem(
    http: httpx.AsyncClient, client: RegisteredClient, code: str, verifier: str | None, **extra: str
) -> httpx.Response:
    """Exchange a code at the token endpoint as ``client``."""
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": client.redirect_uri}
    if verifier is not None:
        form["code_verifier"] = verifier
    form.update(extra)
    return await token_call(http, client, form)


async def token_call(
    http: httpx.AsyncClient,
    client: RegisteredClient,
    form: dict[str, str],
    path: str = "/oauth/token",
) -> httpx.Response:
    """POST a form to a client-authenticated endpoint as ``client``."""
    if client.secret is None:
        return await http.post(path, data={**form, "client_id": client.id})
    return await http.post(path, data=form, auth=(client.id, client.secret))
