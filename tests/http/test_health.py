"""Health, readiness, discovery and the OpenAPI document."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
from sqlalchemy import text

from bastion.app import create_app
from bastion.store import migrate
from bastion.store.db import create_engine
from tests.conftest import Databases, make_settings
from tests.support.server import ServerThread


async def test_healthz_and_readyz_answer_without_a_token(http: httpx.AsyncClient) -> None:
    """The probes are public and report ready once migrations are current."""
    live = await http.get("/healthz")
    ready = await http.get("/readyz")
    assert (live.status_code, live.json()) == (200, {"status": "ok"})
    assert (ready.status_code, ready.json()) == (200, {"status": "ready"})


async def _set_revision(url: str, revision: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(text("UPDATE alembic_version SET version_num = :r"), {"r": revision})
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def _app_on(url: str, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an app serving from ``url``, in this process."""
    app = create_app(make_settings(tmp_path, url))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.api.router.lifespan_context(app.api),
        httpx.AsyncClient(transport=transport, base_url="http://bastion.test") as client,
    ):
        yield client


async def test_readyz_is_503_while_the_schema_is_behind(
    databases: Databases, tmp_path: Path
) -> None:
    """A database one revision behind this code is not ready: 503 asks for a migration."""
    url = databases.new()
    engine = create_engine(url)
    await migrate.upgrade(engine)
    await engine.dispose()
    head, previous = migrate.revisions()[-1], migrate.revisions()[-2]
    async with _app_on(url, tmp_path) as client:
        assert (await client.get("/readyz")).status_code == 200
        await _set_revision(url, previous)
        behind = await client.get("/readyz")
        assert behind.status_code == 503, behind.text
        assert behind.headers["retry-after"].isdigit()
        assert "run `bastion migrate`" in behind.json()["detail"]
        await _set_revision(url, head)
        assert (await client.get("/readyz")).status_code == 200


async def test_openapi_is_3_1_and_lists_the_api(http: httpx.AsyncClient) -> None:
    """OpenAPI 3.1 documents every v1 route and the bearer scheme."""
    document = (await http.get("/openapi.json")).json()
    assert document["openapi"].startswith("3.1")
    assert "/v1/channels/{channel_id}/messages" in document["paths"]
    assert "HTTPBearer" in document["components"]["securitySchemes"]


async def test_jwks_publishes_the_signing_key(
    http: httpx.AsyncClient, server: ServerThread
) -> None:
    """The JWKS has the active key first, then the next one, public parts only."""
    response = await http.get("/.well-known/jwks.json")
    assert response.status_code == 200, response.text
    keys = response.json()["keys"]
    assert keys[0]["kid"] == server.services.keys.active.kid
    assert len(keys) >= 2
    assert all("d" not in key for key in keys)


async def test_authorization_server_metadata(http: httpx.AsyncClient, server: ServerThread) -> None:
    """RFC 8414 metadata advertises exactly what is implemented."""
    meta = (await http.get("/.well-known/oauth-authorization-server")).json()
    assert meta["issuer"] == server.settings.issuer
    assert meta["token_endpoint"] == f"{server.settings.issuer}/oauth/token"
    assert meta["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "private_key_jwt",
        "none",
    ]
    assert "password" not in meta["grant_types_supported"]
    assert "implicit" not in meta["grant_types_supported"]


async def test_openapi_documents_problem_responses(http: httpx.AsyncClient) -> None:
    """Every operation documents its 4XX/5XX answers as application/problem+json."""
    document = (await http.get("/openapi.json")).json()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            responses = operation["responses"]
            for status in ("4XX", "5XX"):
                assert "application/problem+json" in responses[status]["content"], (path, method)
    assert "HTTPValidationError" not in document.get("components", {}).get("schemas", {})
