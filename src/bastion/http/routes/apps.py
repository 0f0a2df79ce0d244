"""The app (tenant) the calling backend belongs to."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from bastion.chat.apps import app_view, own_app
from bastion.http.deps import ServicesDep, requires
from bastion.http.responses import JSONResponse, json_response
from bastion.http.schemas.apps import AppOut
from bastion.security.principal import Principal

router = APIRouter(tags=["apps"])

ReadApp = Annotated[Principal, requires("app:read")]


@router.get("/v1/app", response_model=AppOut, summary="The caller's app")
async def get_own_app(caller: ReadApp, svc: ServicesDep) -> JSONResponse:
    """Return the app the access token belongs to: its id, name, status and creation time."""
    return json_response(app_view(await own_app(svc.chat.ctx.db, caller)))
