"""The FastAPI application: routers, problem responses and the OpenAPI document."""

from __future__ import annotations

from typing import Any

from fastapi import Depends, FastAPI

from bastion import __version__
from bastion.app.lifespan import Lifespan
from bastion.core.clock import Clock, SystemClock
from bastion.core.settings import Settings
from bastion.http import problems
from bastion.http.deps import known_query
from bastion.http.routes import (
    admin,
    alerts,
    apps,
    audit,
    channels,
    clients,
    health,
    login,
    messages,
    metrics,
    moderation,
    oauth,
    problem_pages,
    ratelimits,
    revocations,
    search,
    user_logins,
    users,
    wellknown,
)
from bastion.http.schemas.common import Problem
from bastion.http.websocket import router as websocket_router

API_DESCRIPTION = """\
Bastion is a self-hostable, secure-by-design chat API: 1:1, group and broadcast
channels over REST and WebSocket. Every endpoint except health, discovery and this
document requires an RFC 9068 bearer access token from `POST /oauth/token`.
"""


PROBLEM_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {
        "description": description,
        "content": {"application/problem+json": {"schema": Problem.model_json_schema()}},
    }
    for status, description in (
        ("4XX", "An RFC 9457 problem: the request was refused."),
        ("5XX", "An RFC 9457 problem: the server could not answer."),
    )
}
"""Every route may answer a problem document; the OpenAPI document says so."""


def create_api(settings: Settings, clock: Clock | None = None) -> FastAPI:
    """The FastAPI application, without the outer ASGI guards."""
    api = FastAPI(
        responses=PROBLEM_RESPONSES,
        title="Bastion",
        version=__version__,
        description=API_DESCRIPTION,
        openapi_url="/openapi.json",
        docs_url="/docs" if settings.debug else None,
        redoc_url=None,
        lifespan=Lifespan(settings, clock or SystemClock()),
        dependencies=[Depends(known_query)],
        # No redirect from /v1/users/ to /v1/users: Starlette builds its Location from
        # the request's Host header, before authentication. A path is exact or a 404.
        redirect_slashes=False,
    )
    problems.install(api)
    # Routers are tried in order: the busiest first.
    routers = (
        messages,
        channels,
        users,
        admin,
        moderation,
        oauth,
        audit,
        alerts,
        wellknown,
        health,
        metrics,
        problem_pages,
        revocations,
        search,
        ratelimits,
        login,
        clients,
        user_logins,
        apps,
    )
    for module in routers:
        api.include_router(module.router)
    api.include_router(websocket_router)
    return api
