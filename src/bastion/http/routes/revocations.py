"""Incident response: revoke every token of a user, or of the whole app, issued before T.

Effective on the next request on this node, on other nodes within
``resource_server.revocation_refresh_seconds``; open WebSockets of the affected users
are closed with 4001.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request

from bastion.core.clock import rfc3339
from bastion.core.ids import Kind
from bastion.http.deps import ServicesDep, origin_of, path_id, requires
from bastion.http.responses import JSONResponse, json_response
from bastion.http.schemas.revocations import RevokeBefore, RevokeBeforeOut
from bastion.observe.events import Actor
from bastion.security.principal import Principal

router = APIRouter(tags=["token revocation"])

RevokeTokens = Annotated[Principal, requires("token:revoke")]


@router.post(
    "/v1/token-revocation",
    response_model=RevokeBeforeOut,
    summary="Revoke every token of the app issued before a time",
)
async def revoke_app_tokens(
    caller: RevokeTokens, svc: ServicesDep, request: Request, body: RevokeBefore | None = None
) -> JSONResponse:
    """Refuse every access token of the app (users and backends) issued before the time."""
    return await _revoke(svc, request, caller, None, body)


@router.post(
    "/v1/users/{user_id}/token-revocation",
    response_model=RevokeBeforeOut,
    summary="Revoke every token of a user issued before a time",
)
async def revoke_user_tokens(
    user_id: str,
    caller: RevokeTokens,
    svc: ServicesDep,
    request: Request,
    body: RevokeBefore | None = None,
) -> JSONResponse:
    """Refuse every access token of the user issued before the time; close their sockets."""
    return await _revoke(svc, request, caller, path_id(Kind.USER, user_id, "user"), body)


async def _revoke(
    svc: ServicesDep,
    request: Request,
    caller: Principal,
    user_id: str | None,
    body: RevokeBefore | None,
) -> JSONResponse:
    asked = body.issued_before if body is not None else None
    cutoff = await svc.chat.cutoffs.revoke_before(caller, user_id=user_id, issued_before=asked)
    await svc.events.emit(
        "token.revoke",
        "success",
        actor=Actor(app_id=caller.app_id, subject=caller.subject, client_id=caller.client_id),
        origin=origin_of(request),
        resource=f"user:{user_id}" if user_id else f"app:{caller.app_id}",
        reason="revoke_before",
        details={"scope": "user" if user_id else "app", "issued_before": rfc3339(cutoff)},
    )
    return json_response(
        {"app_id": caller.app_id, "user_id": user_id, "issued_before": rfc3339(cutoff)}
    )
