"""Rate-limit policies and per-app / per-user overrides, for an app's backend."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from bastion.core.ids import Kind
from bastion.http.deps import ServicesDep, origin_of, path_id, requires
from bastion.http.responses import JSONResponse, json_response
from bastion.http.schemas.ratelimits import OverrideIn, OverrideOut, RateLimitsOut
from bastion.observe.events import Actor
from bastion.security.principal import Principal
from bastion.security.ratelimit.admin import OverrideView

router = APIRouter(tags=["rate limits"])

ReadLimits = Annotated[Principal, requires("ratelimit:read")]
ManageLimits = Annotated[Principal, requires("ratelimit:manage")]


def _view(found: OverrideView) -> dict[str, object]:
    return {"policy": found.policy, "user_id": found.user_id, "quotas": list(found.quotas)}


@router.get("/v1/rate-limits", response_model=RateLimitsOut, summary="Policies and overrides")
async def rate_limits(caller: ReadLimits, svc: ServicesDep) -> JSONResponse:
    """The configured policies and the overrides in force for the caller's app."""
    policies = [
        {
            "name": p.name,
            "groups": sorted(p.groups),
            "scope": p.scope,
            "quotas": [{"name": q.name, "limit": q.limit, "window": q.window} for q in p.quotas],
            "on_store_failure": p.on_store_failure,
            "baseline_factor": p.baseline_factor,
        }
        for p in svc.ratelimit.throttle.policies.policies
    ]
    overrides = [_view(o) for o in svc.ratelimit.admin.of_app(caller.app_id)]
    return json_response({"policies": policies, "overrides": overrides})


@router.put("/v1/rate-limits/{policy}", response_model=OverrideOut, summary="Override for the app")
async def put_app_override(
    policy: str, body: OverrideIn, caller: ManageLimits, svc: ServicesDep, request: Request
) -> JSONResponse:
    """Replace the quotas of ``policy`` for every caller of the app."""
    return await _put(svc, request, caller, None, policy, body)


@router.delete("/v1/rate-limits/{policy}", status_code=204, summary="Remove the app's override")
async def delete_app_override(
    policy: str, caller: ManageLimits, svc: ServicesDep, request: Request
) -> Response:
    """Go back to the configured quotas of ``policy`` for the app."""
    return await _delete(svc, request, caller, None, policy)


@router.put(
    "/v1/users/{user_id}/rate-limits/{policy}",
    response_model=OverrideOut,
    summary="Override for one user",
)
async def put_user_override(
    user_id: str,
    policy: str,
    body: OverrideIn,
    caller: ManageLimits,
    svc: ServicesDep,
    request: Request,
) -> JSONResponse:
    """Replace the quotas of ``policy`` for one user (wins over the app's override)."""
    return await _put(svc, request, caller, path_id(Kind.USER, user_id, "user"), policy, body)


@router.delete(
    "/v1/users/{user_id}/rate-limits/{policy}", status_code=204, summary="Remove a user's override"
)
async def delete_user_override(
    user_id: str, policy: str, caller: ManageLimits, svc: ServicesDep, request: Request
) -> Response:
    """Go back to the app's (or the configured) quotas of ``policy`` for the user."""
    return await _delete(svc, request, caller, path_id(Kind.USER, user_id, "user"), policy)


async def _put(
    svc: ServicesDep,
    request: Request,
    caller: Principal,
    user_id: str | None,
    policy: str,
    body: OverrideIn,
) -> JSONResponse:
    quotas = tuple(q.strip() for q in body.quotas)
    found = await svc.ratelimit.admin.put(caller.app_id, user_id, policy, quotas)
    await _report(svc, request, caller, user_id, policy, ",".join(quotas))
    return json_response(_view(found))


async def _delete(
    svc: ServicesDep, request: Request, caller: Principal, user_id: str | None, policy: str
) -> Response:
    await svc.ratelimit.admin.delete(caller.app_id, user_id, policy)
    await _report(svc, request, caller, user_id, policy, None)
    return Response(status_code=204)


async def _report(
    svc: ServicesDep,
    request: Request,
    caller: Principal,
    user_id: str | None,
    policy: str,
    quotas: str | None,
) -> None:
    await svc.events.emit(
        "admin.change",
        "success",
        actor=Actor(app_id=caller.app_id, subject=caller.subject, client_id=caller.client_id),
        origin=origin_of(request),
        resource=f"ratelimit:{policy}",
        reason="override.put" if quotas else "override.delete",
        details={"user_id": user_id, "quotas": quotas},
    )
