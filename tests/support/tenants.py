"""One app (tenant) per test, driven through the real HTTP API."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import httpx

from bastion.app import secret_hasher
from bastion.chat.apps import create_app
from bastion.core.clock import SystemClock
from bastion.security.oauth import rfc8693
from tests.support.server import ServerThread


@dataclass(slots=True)
class User:
    """A user of a test app, with a token acting for them."""

    id: str
    external_id: str
    token: str

    @property
    def headers(self) -> dict[str, str]:
        """Authorization header for this user."""
        return {"Authorization": f"Bearer {self.token}"}


@dataclass(slots=True)
class Tenant:
    """A freshly created app with its backend credentials."""

    server: ServerThread
    http: httpx.AsyncClient
    app_id: str
    client_id: str
    client_secret: str
    _backend_token: str | None = field(default=None)

    async def token_request(self, **form: str) -> httpx.Response:
        """POST /oauth/token authenticated as the app's backend."""
        return await self.http.post(
            "/oauth/token", data=form, auth=(self.client_id, self.client_secret)
        )

    async def backend_token(self) -> str:
        """A client_credentials access token (cached per tenant)."""
        if self._backend_token is None:
            response = await self.token_request(grant_type="client_credentials")
            assert response.status_code == 200, response.text
            self._backend_token = response.json()["access_token"]
        return self._backend_token

    async def backend_headers(self) -> dict[str, str]:
        """Authorization header for the app backend."""
        return {"Authorization": f"Bearer {await self.backend_token()}"}

    async def user(self, external_id: str, display_name: str | None = None) -> User:
        """Create a user and obtain a token for them by token exchange."""
        response = await self.http.post(
            "/v1/users",
            json={"external_id": external_id, "display_name": display_name or external_id},
            headers=await self.backend_headers(),
        )
        assert response.status_code == 201, response.text
        user_id = response.json()["id"]
        return User(user_id, external_id, await self.user_token(user_id))

    async def user_token(self, user_id: str, **extra: str) -> str:
        """Exchange for a token acting for ``user_id``."""
        response = await self.token_request(
            grant_type=rfc8693.GRANT_TYPE,
            subject_token=user_id,
            subject_token_type=rfc8693.USER_ID_TYPE,
            **extra,
        )
        assert response.status_code == 200, response.text
        token: str = response.json()["access_token"]
        return token

    async def channel(
        self, owner: User, members: list[User], type_: str = "group", name: str = "room"
    ) -> dict[str, Any]:
        """Create a channel as ``owner`` with ``members``."""
        body: dict[str, Any] = {"type": type_, "members": [m.id for m in members]}
        if type_ != "direct":
            body["name"] = name
        response = await self.http.post("/v1/channels", json=body, headers=owner.headers)
        assert response.status_code in (200, 201), response.text
        channel: dict[str, Any] = response.json()
        return channel

    async def send(self, user: User, channel_id: str, text: str, **extra: Any) -> dict[str, Any]:
        """Send a message as ``user``."""
        response = await self.http.post(
            f"/v1/channels/{channel_id}/messages",
            json={"text": text, **extra},
            headers=user.headers,
        )
        assert response.status_code in (200, 201), response.text
        message: dict[str, Any] = response.json()
        return message


def new_tenant(server: ServerThread, http: httpx.AsyncClient, name: str = "test app") -> Tenant:
    """Create an app on the running server."""
    services = server.services
    created = server.run(
        create_app(services.db, secret_hasher(server.settings), SystemClock(), name=name)
    )
    return Tenant(server, http, created.app.id, created.client.id, created.client_secret)
