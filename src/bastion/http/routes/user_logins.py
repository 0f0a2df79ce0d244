"""Login credentials of users, managed by the app backend (``users:write``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import Response

from bastion.core.ids import Kind
from bastion.http.deps import ServicesDep, path_id, requires
from bastion.http.schemas.clients import LoginSet, MfaRequirement
from bastion.security.principal import Principal

router = APIRouter(prefix="/v1/users", tags=["users"])

WriteUsers = Annotated[Principal, requires("user:write")]


@router.put("/{user_id}/login", status_code=204, summary="Set a user's username and password")
async def set_login(user_id: str, body: LoginSet, caller: WriteUsers, svc: ServicesDep) -> Response:
    """Set the username and password used on the login pages (422 for a weak password)."""
    await svc.authserver.logins.set_password(
        caller.app_id, path_id(Kind.USER, user_id, "user"), body.username, body.password
    )
    return Response(status_code=204)


@router.put("/{user_id}/mfa", status_code=204, summary="Require TOTP for a user, or not")
async def require_mfa(
    user_id: str, body: MfaRequirement, caller: WriteUsers, svc: ServicesDep
) -> Response:
    """With ``required: true`` the user enrols TOTP at the next login and uses it after."""
    await svc.authserver.logins.require_mfa(
        caller.app_id, path_id(Kind.USER, user_id, "user"), body.required
    )
    return Response(status_code=204)


@router.delete("/{user_id}/mfa", status_code=204, summary="Reset a user's TOTP")
async def reset_mfa(user_id: str, caller: WriteUsers, svc: ServicesDep) -> Response:
    """Turn TOTP off and delete the recovery codes (the user enrols again if required)."""
    await svc.authserver.logins.reset_mfa(caller.app_id, path_id(Kind.USER, user_id, "user"))
    return Response(status_code=204)


@router.post("/{user_id}/unlock", status_code=204, summary="Unlock a user's login")
async def unlock(user_id: str, caller: WriteUsers, svc: ServicesDep) -> Response:
    """Clear the failed-login counters, ending a temporary or permanent lockout."""
    await svc.authserver.logins.unlock(caller.app_id, path_id(Kind.USER, user_id, "user"))
    return Response(status_code=204)
