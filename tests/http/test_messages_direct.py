"""The send route's direct handler: it serves valid sends, leaves everything else to
FastAPI's handler, and makes exactly the calls the route declares."""

from __future__ import annotations

from typing import Any

import fastapi.dependencies.utils
import fastapi.routing
import httpx
import pytest
from fastapi.routing import iter_route_contexts

from bastion.http.deps import Authorized, known_query, services
from bastion.http.routes.messages import DirectSend
from tests.support.server import ServerThread
from tests.support.tenants import Tenant

SEND = "/v1/channels/{channel_id}/messages"


async def test_a_valid_send_is_served_without_generic_dependency_solving(
    http: httpx.AsyncClient, tenant: Tenant, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A valid send runs the direct handler; an invalid body goes to FastAPI's handler,
    which answers 422 with the field at fault."""
    alice, bob = await tenant.user("alice"), await tenant.user("bob")
    channel = await tenant.channel(alice, [bob])
    url = SEND.format(channel_id=channel["id"])
    solved: list[Any] = []
    real = fastapi.dependencies.utils.solve_dependencies

    async def counted(**kwargs: Any) -> Any:
        solved.append(kwargs["dependant"].call)
        return await real(**kwargs)

    # FastAPI's route handler calls it by the name it imported into fastapi.routing.
    monkeypatch.setattr(fastapi.routing, "solve_dependencies", counted)
    sent = await http.post(url, json={"text": "direct"}, headers=alice.headers)
    assert sent.status_code == 201, sent.text
    assert solved == []
    refused = await http.post(url, json={"text": "x", "colour": "red"}, headers=alice.headers)
    assert refused.status_code == 422
    assert solved != []


def test_the_direct_handler_makes_every_call_the_route_declares(server: ServerThread) -> None:
    """The route's dependencies and parameters are exactly those the direct handler
    supplies; a new one must be added there too (or the route lose its direct handler)."""
    (context,) = [
        c
        for c in iter_route_contexts(server.app.api.routes)
        if c.path == SEND and c.methods == {"POST"}
    ]
    assert isinstance(context.original_route, DirectSend)
    dependant = context.dependant
    calls = [d.call for d in dependant.dependencies]
    assert calls[0] is known_query
    assert isinstance(calls[1], Authorized)
    assert calls[1].permission == "message:send"
    assert calls[2] is services
    assert len(calls) == 3
    assert all(d.dependencies == [] for d in dependant.dependencies[1:])
    assert [p.alias for p in dependant.path_params] == ["channel_id"]
    assert [p.alias for p in dependant.header_params] == ["Idempotency-Key"]
    assert (dependant.query_params, dependant.cookie_params) == ([], [])
    assert [p.name for p in dependant.body_params] == ["body"]
    assert dependant.request_param_name == "request"
