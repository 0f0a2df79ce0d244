"""Paths are matched exactly, and no answer is built from the request's Host header."""

from __future__ import annotations

import httpx
import pytest

from tests.support.callers import sample_url
from tests.support.messaging import assert_problem
from tests.support.server import ServerThread
from tests.support.tenants import Tenant

EVIL = "evil.example"


@pytest.mark.parametrize(
    "path", ["/v1/users/", "/v1/channels/", "/healthz/", "/v1/users/me/", "/openapi.json/"]
)
async def test_a_trailing_slash_is_a_404_not_a_redirect(
    http: httpx.AsyncClient, tenant: Tenant, path: str
) -> None:
    """No redirect to the path without the slash (Starlette's default would build its
    Location from the Host header, before authentication): a plain 404 problem."""
    for headers in ({"Host": EVIL}, {"Host": EVIL, **await tenant.backend_headers()}):
        response = await http.get(path, headers=headers)
        assert_problem(response, 404, "not-found")
        assert "location" not in response.headers
        assert EVIL not in response.text


def _urls(server: ServerThread) -> list[str]:
    """Every GET operation of the OpenAPI document, with ids that name nothing."""
    document = server.app.api.openapi()
    return [sample_url(path) for path, item in document["paths"].items() if "get" in item]


async def test_no_answer_reflects_the_host_header(
    http: httpx.AsyncClient, server: ServerThread, tenant: Tenant
) -> None:
    """Absolute URLs come from ``server.public_url`` only: a forged Host appears in no
    header and no body, whatever the route, the caller or the outcome."""
    callers = [{}, await tenant.backend_headers(), (await tenant.user("host")).headers]
    extra = [
        "/v1/users/",
        "/nope",
        "/oauth/authorize?response_type=code&client_id=x",
        "/oauth/login",
        "/problems/not-found",
    ]
    urls = [*_urls(server), *extra]
    assert len(urls) > 30
    for url in urls:
        for auth in callers:
            response = await http.get(url, headers={"Host": EVIL, **auth})
            shown = [response.text, *(f"{k}: {v}" for k, v in response.headers.multi_items())]
            assert not [part for part in shown if EVIL in part], (url, response.status_code)
