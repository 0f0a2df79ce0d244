"""Plain sends served ahead of FastAPI (``bastion.http.direct``): they are answered as
FastAPI would answer them, everything else goes to FastAPI, and the direct handler
makes exactly the calls the route declares."""

from __future__ import annotations

from typing import Any

import fastapi.dependencies.utils
import fastapi.routing
import httpx
import pytest
from fastapi.routing import iter_route_contexts

from bastion.chat.messages import Messages
from bastion.http.deps import Authorized, known_query, services
from bastion.http.routes import messages
from tests.support.problem_checks import problem
from tests.support.server import ServerThread
from tests.support.tenants import Tenant

SEND = "/v1/channels/{channel_id}/messages"
SECRET_DETAIL = "SELECT body FROM messages -- internal detail"


@pytest.fixture
def solved(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The dependency graphs FastAPI solves from now on (one per request it serves)."""
    calls: list[Any] = []
    real = fastapi.dependencies.utils.solve_dependencies

    async def counted(**kwargs: Any) -> Any:
        calls.append(kwargs["dependant"].call)
        return await real(**kwargs)

    # FastAPI's route handler calls it by the name it imported into fastapi.routing.
    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    return calls


async def test_a_plain_send_is_served_without_fastapi(
    http: httpx.AsyncClient, tenant: Tenant, solved: list[Any]
) -> None:
    """A valid send is answered by the direct handler; an invalid body, a query string
    or another method go to FastAPI, which answers them as it always does."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    channel = await tenant.channel(alice, [bob])
    url = SEND.format(channel_id=channel["id"])
    solved.clear()
    sent = await http.post(url, json={"text": "direct"}, headers=alice.headers)
    assert sent.status_code == 201, sent.text
    assert sent.headers["location"] == f"/v1/messages/{sent.json()['id']}"
    assert solved == []
    refused = await http.post(url, json={"text": "x", "colour": "red"}, headers=alice.headers)
    assert "body.colour" in {e["field"] for e in problem(refused, 422)["errors"]}
    assert len(solved) == 1
    queried = await http.post(f"{url}?bogus=1", json={"text": "x"}, headers=alice.headers)
    assert "query.bogus" in {e["field"] for e in problem(queried, 422)["errors"]}
    listed = await http.get(url, headers=alice.headers)
    assert listed.status_code == 200
    assert len(solved) == 3


async def test_errors_of_a_plain_send_get_the_same_answers_as_through_fastapi(
    http: httpx.AsyncClient, tenant: Tenant, solved: list[Any]
) -> None:
    """A send the domain refuses (a channel the caller is not in), one without a valid
    token, and one with a bad Idempotency-Key answer the problems the API documents,
    with the headers they carry, from the direct handler."""
    alice, bob, carol = [await tenant.user(name) for name in ("alice", "bob", "carol")]
    channel = await tenant.channel(alice, [bob])
    url = SEND.format(channel_id=channel["id"])
    solved.clear()
    hidden = await http.post(url, json={"text": "hi"}, headers=carol.headers)
    missing = await http.post(
        SEND.format(channel_id="ch_01JD0000000000000000000000"),
        json={"text": "hi"},
        headers=carol.headers,
    )
    assert problem(hidden, 404) | {"instance": None} == problem(missing, 404) | {"instance": None}
    anonymous = await http.post(url, json={"text": "hi"})
    problem(anonymous, 401)
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    keyed = await http.post(
        url, json={"text": "hi"}, headers={**alice.headers, "Idempotency-Key": "\x7f"}
    )
    problem(keyed, 400)
    assert solved == []


async def test_an_unexpected_error_in_a_plain_send_is_a_bare_500(
    http: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug behind the direct handler answers 500 problem+json with nothing internal."""
    alice = await tenant.user("alice")
    channel = await tenant.channel(alice, [])

    async def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError(SECRET_DETAIL)

    monkeypatch.setattr(Messages, "send", broken)
    response = await http.post(
        SEND.format(channel_id=channel["id"]), json={"text": "hi"}, headers=alice.headers
    )
    body = problem(response, 500, "internal-error")
    assert body["detail"] == "An internal error occurred."
    assert SECRET_DETAIL not in response.text


def test_the_direct_handler_makes_every_call_the_route_declares(server: ServerThread) -> None:
    """The route's dependencies and parameters are exactly those the direct handler
    supplies; a new one must be added there too (or the route leave the direct lane)."""
    (context,) = [
        c
        for c in iter_route_contexts(server.app.api.routes)
        if c.path == SEND and c.methods == {"POST"}
    ]
    assert context.original_route is messages._SEND_ROUTE
    dependant = context.dependant
    calls = [d.call for d in dependant.dependencies]
    assert calls[0] is known_query
    assert isinstance(calls[1], Authorized)
    assert calls[1] is messages._SEND_PERMISSION
    assert calls[1].permission == "message:send"
    assert calls[2] is services
    assert len(calls) == 3
    assert all(d.dependencies == [] for d in dependant.dependencies[1:])
    assert [p.alias for p in dependant.path_params] == ["channel_id"]
    assert [p.alias for p in dependant.header_params] == ["Idempotency-Key"]
    assert (dependant.query_params, dependant.cookie_params) == ([], [])
    assert [p.name for p in dependant.body_params] == ["body"]
    assert dependant.request_param_name == "request"
