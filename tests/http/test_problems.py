"""Errors nobody asks for on purpose: an unexpected exception (500) and a database that
is down (503). Both answer problem+json and reveal nothing internal."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import APIRouter, HTTPException
from sqlalchemy.engine import make_url

from bastion.app import Bastion, create_app
from bastion.core.ids import Kind, new_id
from bastion.store import migrate
from bastion.store.db import create_engine
from tests.conftest import Databases, make_settings
from tests.support import tokens
from tests.support.problem_checks import problem

SECRET_DETAIL = "SELECT secret_hash FROM oauth_clients -- internal detail"


async def _client(app: Bastion) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with (
        app.api.router.lifespan_context(app.api),
        httpx.AsyncClient(transport=transport, base_url="http://bastion.test") as client,
    ):
        yield client


@pytest.fixture
async def broken(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """An app with one extra route that fails the way a bug would."""
    settings = make_settings(tmp_path, f"sqlite+aiosqlite:///{tmp_path / 'b.db'}")
    engine = create_engine(settings.database_url)
    await migrate.upgrade(engine)
    await engine.dispose()
    app = create_app(settings)
    router = APIRouter()

    @router.get("/boom")
    async def boom() -> None:
        raise RuntimeError(SECRET_DETAIL)

    @router.get("/framework/{status}")
    async def framework(status: int) -> None:
        raise HTTPException(status, detail=SECRET_DETAIL, headers={"Retry-After": "7"})

    app.api.include_router(router)
    async for client in _client(app):
        yield client


async def test_unexpected_errors_are_a_bare_500(broken: httpx.AsyncClient) -> None:
    """A bug answers 500 problem+json with a generic detail: no message, no stack trace."""
    response = await broken.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["status"] == 500
    assert body["type"] == "/problems/internal-error"
    assert body["title"] == "Internal server error"
    assert body["detail"] == "An internal error occurred."
    assert body["instance"] == response.headers["x-request-id"]
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert "RuntimeError" not in response.text


@pytest.mark.parametrize(
    ("raised", "status", "type_"),
    [
        (400, 400, "bad-request"),
        (401, 401, "invalid-token"),
        (403, 403, "forbidden"),
        (408, 408, "request-timeout"),
        (409, 409, "conflict"),
        (412, 412, "precondition-failed"),
        (413, 413, "payload-too-large"),
        (415, 415, "unsupported-media-type"),
        (422, 422, "validation-failed"),
        (429, 429, "quota-exceeded"),
        (431, 431, "headers-too-large"),
        (503, 503, "unavailable"),
        (418, 400, "bad-request"),
        (501, 500, "internal-error"),
    ],
)
async def test_framework_errors_keep_their_status(
    broken: httpx.AsyncClient, raised: int, status: int, type_: str
) -> None:
    """An HTTP error raised by the framework answers the problem type of its status (the
    nearest one when no type names it), never a blanket 400, and never its own text."""
    response = await broken.get(f"/framework/{raised}")
    problem(response, status, type_)
    assert SECRET_DETAIL not in response.text
    if status in (429, 503):
        assert response.headers["retry-after"] == "7"
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.fixture
async def no_database(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Bastion]]:
    """An app whose PostgreSQL server is unreachable (nothing listens on port 1)."""
    settings = make_settings(
        tmp_path,
        "postgresql+asyncpg://bastion@127.0.0.1:1/bastion",
        database={"connect_timeout": 0.5},
    )
    app = create_app(settings)
    async for client in _client(app):
        yield client, app


async def test_a_database_outage_is_503_everywhere_but_liveness(
    no_database: tuple[httpx.AsyncClient, Bastion],
) -> None:
    """The process stays up; readiness and every API call answer 503 with Retry-After."""
    client, app = no_database
    assert (await client.get("/healthz")).status_code == 200
    ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"].startswith("application/problem+json")
    assert ready.headers["retry-after"].isdigit()
    assert "asyncpg" not in ready.text
    assert "127.0.0.1" not in ready.text

    services = app.api.state.services
    claims = tokens.claims_for(
        issuer=services.settings.issuer,
        audience=services.settings.audience,
        app_id=new_id(Kind.APP),
        subject=new_id(Kind.USER),
        client_id=new_id(Kind.CLIENT),
        scope="chat:read chat:write",
    )
    token = tokens.sign(services.keys, claims)
    listed = await client.get("/v1/channels", headers={"Authorization": f"Bearer {token}"})
    assert listed.status_code == 503
    assert listed.json()["status"] == 503
    assert listed.headers["retry-after"].isdigit()


async def test_a_failed_token_request_does_not_hang(
    no_database: tuple[httpx.AsyncClient, Bastion],
) -> None:
    """The token endpoint needs the database too: it answers 503 promptly."""
    client, _ = no_database
    async with asyncio.timeout(10):
        response = await client.post(
            "/oauth/token",
            data={"grant_type": "client_credentials"},
            auth=(new_id(Kind.CLIENT), "secret"),
        )
    assert response.status_code == 503
    assert response.headers["content-type"].startswith("application/problem+json")


@dataclass
class OwnDatabase:
    """An app serving as its own PostgreSQL role, from a database that role owns."""

    client: httpx.AsyncClient
    app: Bastion
    role: str
    name: str


@pytest.fixture
async def own_database(databases: Databases, tmp_path: Path) -> AsyncIterator[OwnDatabase]:
    """A throwaway role and database, dropped afterwards; the app is ready at first."""
    if databases.backend != "postgresql":
        pytest.skip("roles and their connection limits are PostgreSQL's")
    assert databases.server_url is not None
    suffix = secrets.token_hex(6)
    role, name = f"bastion_role_{suffix}", f"bastion_test_{suffix}"
    databases.admin(f'CREATE ROLE "{role}" LOGIN')
    try:
        databases.admin(f'CREATE DATABASE "{name}" OWNER "{role}"')
        url = make_url(databases.server_url).set(username=role, database=name)
        settings = make_settings(tmp_path, url.render_as_string(hide_password=False))
        engine = create_engine(settings.database_url)
        await migrate.upgrade(engine)
        await engine.dispose()
        app = create_app(settings)
        async for client in _client(app):
            yield OwnDatabase(client, app, role, name)
    finally:
        databases.admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        databases.admin(f'DROP ROLE IF EXISTS "{role}"')


def _refuse_the_role(databases: Databases, own: OwnDatabase) -> None:
    """Let the role log in no more, and end the connections it has."""
    databases.admin(f'ALTER ROLE "{own.role}" CONNECTION LIMIT 0')
    ends = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{}'"
    databases.admin(ends.format(own.role))


def _drop_the_database(databases: Databases, own: OwnDatabase) -> None:
    databases.admin(f'DROP DATABASE "{own.name}" WITH (FORCE)')


@pytest.mark.parametrize("outage", [_refuse_the_role, _drop_the_database])
async def test_a_server_refusing_connections_is_503(
    databases: Databases,
    own_database: OwnDatabase,
    outage: Callable[[Databases, OwnDatabase], None],
) -> None:
    """Too many connections for the role (53300) or a dropped database (3D000): the
    server refuses a new connection, and readiness and the API answer 503, not 500."""
    client = own_database.client
    assert (await client.get("/readyz")).status_code == 200
    outage(databases, own_database)
    ready = await client.get("/readyz")
    assert ready.status_code == 503, ready.text
    assert ready.json()["type"] == "/problems/unavailable"
    assert ready.headers["retry-after"].isdigit()
    token = await client.post(
        "/oauth/token", data={"grant_type": "client_credentials"}, auth=(new_id(Kind.CLIENT), "x")
    )
    assert token.status_code == 503, token.text
    assert own_database.role not in ready.text + token.text
