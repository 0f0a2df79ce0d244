"""Schema fuzzing of the live server's whole OpenAPI document with schemathesis.

Every operation gets positive (schema-valid) and negative (schema-violating) cases,
authenticated with the right kind of token: no answer is a 5xx, every answer matches
its documented schema and content type, and negative data is rejected. CI runs a
bounded number of examples per operation (``BASTION_FUZZ_EXAMPLES``, default 6); the
longer run is documented in docs/validation.md.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
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

from tests.conftest import Databases, make_settings, start_server
from tests.support.server import ServerThread
from tests.support.tenants import new_tenant

REJECTIONS = ["400", "401", "403", "404", "405", "409", "413", "414", "415", "422", "429", "431"]
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
    """A server of its own: fuzzing from the same process lags its loop, which would
    otherwise shed reads (503) as designed under overload."""
    settings = make_settings(
        tmp_path_factory.mktemp("fuzz"),
        databases.new(),
        ratelimit={"shed_loop_lag_ms": 600_000.0, "shed_latency_ms": 600_000.0},
    )
    running = start_server(settings)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def tokens(fuzz_server: ServerThread) -> dict[str, str]:
    """A backend token and a user token (a member of one channel with one message)."""

    async def make() -> dict[str, str]:
        async with httpx.AsyncClient(base_url=fuzz_server.base_url, timeout=10) as http:
            tenant = new_tenant(fuzz_server, http, name="fuzz")
            alice, bob = await tenant.user("alice"), await tenant.user("bob")
            channel = await tenant.channel(alice, [bob])
            await tenant.send(alice, channel["id"], "hello")
            return {"backend": await tenant.backend_token(), "user": alice.token}

    return asyncio.run(make())


def load_schema(server: ServerThread) -> BaseSchema:
    """The live server's OpenAPI document."""
    config = SchemathesisConfig()
    config.projects.default.generation.update(max_examples=EXAMPLES, deterministic=True)
    # The guards refuse over-long targets (414) and headers (431) before validation.
    config.projects.default.checks = ChecksConfig.from_dict(
        {"negative_data_rejection": {"expected-statuses": REJECTIONS}}
    )
    return schemathesis.openapi.from_url(f"{server.base_url}/openapi.json", config=config)


def _token_for(path: str, tokens: dict[str, str]) -> str:
    """Backend routes take the app's token; chat routes take a user's."""
    backend = path.startswith(("/v1/users", "/v1/admin", "/v1/audit", "/v1/revocations"))
    return tokens["backend"] if backend and path != "/v1/users/me" else tokens["user"]


def fuzz(
    operation: APIOperation[Any, Any, Any, Any], mode: GenerationMode, tokens: dict[str, str]
) -> None:
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
        headers = {"Authorization": f"Bearer {_token_for(case.path, tokens)}"}
        case.call_and_validate(headers=headers, checks=CHECKS)

    run()


@pytest.mark.fuzz
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_every_operation_holds_its_schema(
    fuzz_server: ServerThread, tokens: dict[str, str], mode: GenerationMode
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
