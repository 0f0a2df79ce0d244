"""Liveness and readiness probes (public)."""

from __future__ import annotations

from fastapi import APIRouter

from bastion.core.errors import Unavailable
from bastion.http.deps import ServicesDep
from bastion.http.responses import JSONResponse, json_response
from bastion.store import migrate

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="Liveness: the process is serving requests")
async def healthz() -> JSONResponse:
    """Answer as long as the process runs."""
    return json_response({"status": "ok"})


@router.get("/readyz", summary="Readiness: the database answers and its schema is current")
async def readyz(svc: ServicesDep) -> JSONResponse:
    """503 until the database is reachable and migrated to this version's schema."""
    await svc.db.ping()
    try:
        current = await migrate.is_current(svc.db.engine)
    except Exception as exc:
        raise Unavailable("The database schema cannot be read.") from exc
    if not current:
        raise Unavailable("The database schema is not current: run `bastion migrate`.")
    return json_response({"status": "ready"})
