"""Schema fuzzing of the live server's whole OpenAPI document with schemathesis.

Every operation gets positive (schema-valid) and negative (schema-violating) cases,
sent with a token its declared permission allows (the OAuth endpoints with the app's
client credentials), so no case stops at authentication or authorization: no answer
is a 5xx, every answer matches its documented schema and content type, and negative
data is refused as invalid: 422, or 400 where a guard or the OAuth error format
answers first, 414 or 431 where a generated value makes the request target or headers
too long, and 404 for a path parameter (an id of the wrong form names nothing). The
Authorization header itself is not fuzzed; missing and bad tokens are
tests/http/test_route_auth.py's. CI runs a bounded number of examples per operation
(``BASTION_FUZZ_EXAMPLES``, default 6); the longer run is documented in
docs/validation.md.
"""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import APIOperation, Case, GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import ChecksConfig, SchemathesisConfig
from schemathesis.core.result import Ok
from schemathesis.schemas import BaseSchema

from bastion.app import secret_hasher
from bastion.chat.apps import create_app
from bastion.core.clock import SystemClock
from bastion.http.permissions import declared
from tests.conftest import Databases, make_settings, start_server
from tests.support.callers import Credential, credentials, for_permission
from tests.support.server import ServerThread
from tests.support.tenants import new_tenant

REJECTIONS = ["400", "404", "414", "422", "431"]
CLIENT_AUTHENTICATED = {"/oauth/token", "/oauth/revoke", "/oauth/introspect"}
APP_WIDE_REVOCATION = "/v1/token-revocation"
"""Refuses every token of the app issued until now: each example gets an app of its own."""
EXAMPLES = int(os.environ.get("BASTION_FUZZ_EXAMPLES", "6"))
CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    content_type_conformance,
    status_code_conformance,
    negative_data_rejection,
]


@pytest.fixture(scope="module")
def fuzz_server(
    databases: Databases, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerThread]:
    """A server of its own, without rate limits: fuzzing from the same process lags its
    loop, which would otherwise shed reads (503) as designed under overload."""
    settings = make_settings(
        tmp_path_factory.mktemp("fuzz"),
        databases.new(),
        # Nor may the overrides the fuzzer sets through /v1/rate-limits throttle the rest.
        ratelimit={"enabled": False},
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tokens(fuzz_server: ServerThread) -> Tokens:
    """A token of each kind (the member one of one channel with one message), and the
    permission each route declares, to pick the token that passes its checks."""

    async def make() -> Tokens:
        async with httpx.AsyncClient(base_url=fuzz_server.base_url, timeout=10) as http:
            tenant = new_tenant(fuzz_server, http, name="fuzz")
            alice, bob = await tenant.user("alice"), await tenant.user("bob")
            channel = await tenant.channel(alice, [bob])
            await tenant.send(alice, channel["id"], "hello")
            found = await credentials(tenant, alice)
        pair = f"{tenant.client_id}:{tenant.client_secret}".encode()
        return Tokens(fuzz_server, found, permissions, base64.b64encode(pair).decode())

    declarations = declared(fuzz_server.app.api)
    permissions = {(d.method, d.path): d.permission for d in declarations}
    return asyncio.run(make())


def load_schema(server: ServerThread) -> BaseSchema:
    """The live server's OpenAPI document."""
    config = SchemathesisConfig()
    config.projects.default.generation.update(
        max_examples=EXAMPLES, deterministic=True, with_security_parameters=False
    )
    config.projects.default.checks = ChecksConfig.from_dict(
        {"negative_data_rejection": {"expected-statuses": REJECTIONS}}
    )
    return schemathesis.openapi.from_url(f"{server.base_url}/openapi.json", config=config)


@dataclass(frozen=True, slots=True)
class Tokens:
    """A credential of each kind and the permission of each route."""

    server: ServerThread
    found: list[Credential]
    permissions: dict[tuple[str, str], str | None]
    client: str
    """HTTP Basic credentials of the app's backend client."""

    def headers(self, method: str, path: str) -> dict[str, str]:
        """The header of a token the route's permission allows; the client's credentials
        for the OAuth endpoints that authenticate clients; nothing for the other public
        routes."""
        if path in CLIENT_AUTHENTICATED:
            return {"Authorization": f"Basic {self.client}"}
        if path == APP_WIDE_REVOCATION:
            return {"Authorization": f"Bearer {_new_app_token(self.server)}"}
        credential = for_permission(self.permissions[(method.upper(), path)], self.found)
        return credential.headers if credential else {}


def _new_app_token(server: ServerThread) -> str:
    """A backend token of a new app."""
    settings = server.settings
    created = server.run(
        create_app(server.services.db, secret_hasher(settings), SystemClock(), name="revoker")
    )
    response = httpx.post(
        f"{server.base_url}/oauth/token",
        data={"grant_type": "client_credentials"},
        auth=(created.client.id, created.client_secret),
    )
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token


def fuzz(operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode, tokens: Tokens) -> None:
    """Run EXAMPLES generated cases of one mode against one operation."""

    @given(operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
        phases=[Phase.explicit, Phase.generate],
        database=None,
    )
    def run(case: Case[Any]) -> None:
        headers = tokens.headers(operation.method, operation.path)
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


@pytest.mark.fuzz
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_holds_its_schema(
    fuzz_server: ServerThread, tokens: Tokens, mode: GenerationMode
) -> None:
    """No 5xx, responses match their schema, negative data is refused: every operation."""
    schema = load_schema(fuzz_server)
    operations = []
    for result in schema.get_all_operations():
        assert isinstance(result, Ok), result
        operations.append(result.ok())
    assert len(operations) > 20
    failures = {}
    for operation in operations:
        try:
            fuzz(operation, mode, tokens)
        except Unsatisfiable:
            continue  # nothing to vary: an operation without parameters has no negative data
        except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every failure
            failures[operation.label] = str(exc)[:3000]
    assert failures == {}, "\n\n".join(f"{k}: {v}" for k, v in failures.items())
