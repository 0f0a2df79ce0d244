"""Alert state for operators: every rule, whether it is firing and since when.

Like ``/metrics`` it describes the whole server, so it needs ``metrics:read``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from bastion.http.deps import ServicesDep, requires
from bastion.http.responses import JSONResponse, json_response
from bastion.security.principal import Principal

router = APIRouter(prefix="/v1/admin", tags=["monitoring"])


@router.get("/alerts", summary="Alert rules and their state")
async def list_alerts(
    _caller: Annotated[Principal, requires("metrics:read")], svc: ServicesDep
) -> JSONResponse:
    """Each rule with its state (inactive, pending, firing), since when, and its last value."""
    return json_response({"data": svc.monitoring.engine.snapshot()})
