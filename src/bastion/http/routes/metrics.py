"""Prometheus exposition: never anonymous, only for tokens with ``metrics:read``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from bastion.http.deps import requires
from bastion.security.principal import Principal

router = APIRouter(tags=["monitoring"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(_caller: Annotated[Principal, requires("metrics:read")]) -> Response:
    """Every metric family of this process in the Prometheus text format."""
    return Response(
        generate_latest(REGISTRY),
        media_type=CONTENT_TYPE_LATEST,
        headers={"Cache-Control": "no-store"},
    )
