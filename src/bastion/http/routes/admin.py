"""The admin API: the permission vocabulary, the app's role policy, role assignments and
the app's MFA policy.

Every change is checked against the caller's own permissions (no one grants what they
lack) and recorded as an ``admin.change`` security event.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from bastion.chat.app_roles import Assignment
from bastion.core.ids import Kind
from bastion.http.deps import PageDep, ServicesDep, cursor_id, origin_of, path_id, requires
from bastion.http.responses import JSONResponse, json_response
from bastion.http.schemas.admin import (
    AssignmentOut,
    AssignmentPage,
    AssignmentUpdate,
    MfaPolicyOut,
    MfaPolicyUpdate,
    PermissionList,
    PolicyOut,
    RoleDefinition,
    RoleOut,
)
from bastion.security.authz import actor_of
from bastion.security.mfa_policy import AppMfaPolicy, MfaRule
from bastion.security.policy import VOCABULARY
from bastion.security.principal import Principal

router = APIRouter(prefix="/v1/admin", tags=["admin"])

ReadPolicy = Annotated[Principal, requires("policy:read")]
ManagePolicy = Annotated[Principal, requires("policy:manage")]
ReadRoles = Annotated[Principal, requires("role:read")]
ManageRoles = Annotated[Principal, requires("role:manage")]
ManageMfa = Annotated[Principal, requires("mfa:manage")]


def _assignment(found: Assignment) -> dict[str, object]:
    return {"user_id": found.user_id, "roles": sorted(found.roles), "assigned": found.assigned}


@router.get("/permissions", response_model=PermissionList, summary="The permission vocabulary")
async def list_permissions(caller: ReadPolicy) -> JSONResponse:
    """Every permission, the OAuth scope it needs, and what it allows."""
    data = [
        {"name": p.name, "scope": p.scope, "description": p.description, "sensitive": p.sensitive}
        for p in VOCABULARY
    ]
    return json_response({"data": data})


@router.get("/policy", response_model=PolicyOut, summary="The app's role policy")
async def get_policy(caller: ReadPolicy, svc: ServicesDep) -> JSONResponse:
    """Every role with the permissions it holds in this app."""
    policy, customised = await svc.chat.app_roles.policy(caller)
    data = [
        {
            "role": role,
            "permissions": sorted(policy.grants[role]),
            "customised": role in customised,
        }
        for role in policy.roles()
    ]
    return json_response({"data": data})


@router.put("/policy/roles/{role}", response_model=RoleOut, summary="Define a role")
async def define_role(
    role: str, body: RoleDefinition, caller: ManagePolicy, svc: ServicesDep, request: Request
) -> JSONResponse:
    """Replace the permissions of a role in this app (never more than you hold)."""
    granted = await svc.chat.app_roles.define(
        caller, role, frozenset(body.permissions), origin_of(request)
    )
    return json_response({"role": role, "permissions": sorted(granted), "customised": True})


@router.delete("/policy/roles/{role}", status_code=204, summary="Reset a role")
async def reset_role(
    role: str, caller: ManagePolicy, svc: ServicesDep, request: Request
) -> Response:
    """Drop this app's definition: a built-in role returns to its documented default."""
    await svc.chat.app_roles.reset(caller, role, origin_of(request))
    return Response(status_code=204)


@router.get("/roles", response_model=AssignmentPage, summary="List role assignments")
async def list_assignments(
    caller: ReadRoles,
    svc: ServicesDep,
    page: PageDep,
    after: Annotated[
        str | None, Query(max_length=40, description="A user id (next_cursor).")
    ] = None,
) -> JSONResponse:
    """Users holding explicitly assigned roles, by user id."""
    found, more = await svc.chat.app_roles.page(
        caller, after=cursor_id(Kind.USER, after, "query.after"), limit=page.limit
    )
    next_cursor = found[-1].user_id if more and found else None
    return json_response({"data": [_assignment(a) for a in found], "next_cursor": next_cursor})


@router.get("/roles/{user_id}", response_model=AssignmentOut, summary="A user's roles")
async def get_assignment(user_id: str, caller: ReadRoles, svc: ServicesDep) -> JSONResponse:
    """The app roles one user holds."""
    found = await svc.chat.app_roles.get(caller, path_id(Kind.USER, user_id, "user"))
    return json_response(_assignment(found))


@router.put("/roles/{user_id}", response_model=AssignmentOut, summary="Assign roles")
async def assign_roles(
    user_id: str,
    body: AssignmentUpdate,
    caller: ManageRoles,
    svc: ServicesDep,
    request: Request,
) -> JSONResponse:
    """Replace a user's app roles (only roles no stronger than your own)."""
    found = await svc.chat.app_roles.assign(
        caller, path_id(Kind.USER, user_id, "user"), frozenset(body.roles), origin_of(request)
    )
    return json_response(_assignment(found))


def _rule(rule: MfaRule) -> dict[str, object]:
    return {"required_for_everyone": rule.everyone, "required_roles": sorted(rule.roles)}


def _mfa_policy(found: AppMfaPolicy) -> dict[str, object]:
    return {
        **_rule(found.own),
        "server_floor": _rule(found.floor),
        "effective": _rule(found.effective),
    }


@router.get("/mfa-policy", response_model=MfaPolicyOut, summary="The app's MFA policy")
async def get_mfa_policy(caller: ReadPolicy, svc: ServicesDep) -> JSONResponse:
    """Who must use TOTP at login: the app's rule, the server's floor, and their union."""
    return json_response(_mfa_policy(await svc.authserver.mfa_policies.get(caller.app_id)))


@router.put("/mfa-policy", response_model=MfaPolicyOut, summary="Set the app's MFA policy")
async def set_mfa_policy(
    body: MfaPolicyUpdate, caller: ManageMfa, svc: ServicesDep, request: Request
) -> JSONResponse:
    """Require TOTP for everyone in the app, or for holders of the listed roles; users who
    have not enrolled are sent to enrolment at their next login. The server-wide setting
    stays a floor: the effective rule is the union of both."""
    rule = MfaRule(body.required_for_everyone, frozenset(body.required_roles))
    found = await svc.authserver.mfa_policies.set(
        caller.app_id, rule, actor_of(caller), origin_of(request)
    )
    return json_response(_mfa_policy(found))
