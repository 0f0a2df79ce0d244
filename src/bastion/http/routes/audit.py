"""The auditor API: the app's audit log, filtered and paged, and its JSON-lines export.

Gated by the ``audit:read`` scope (an auditor role can map onto it); every query is
limited to the caller's own app and is itself recorded in the audit log.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse

from bastion.core.errors import FieldError, ValidationFailed
from bastion.http.deps import PageDep, ServicesDep, origin_of, requires
from bastion.http.responses import JSONResponse, json_response
from bastion.observe.events import Actor
from bastion.security.audit.reader import AuditReader, stored_time
from bastion.security.principal import Principal
from bastion.store.repos.audit import AuditFilter

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Auditor = Annotated[Principal, requires("audit:read")]
_NAME = r"^[a-z][a-z0-9_.]{0,63}$"


async def audit_filter(
    caller: Auditor,
    action: Annotated[str | None, Query(pattern=_NAME, description="e.g. auth.login")] = None,
    outcome: Annotated[str | None, Query(pattern=r"^(success|failure|allowed|denied)$")] = None,
    subject: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    request_id: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    since: Annotated[datetime | None, Query(description="RFC 3339, inclusive.")] = None,
    until: Annotated[datetime | None, Query(description="RFC 3339, exclusive.")] = None,
) -> AuditFilter:
    """The filters of a query, scoped to the caller's app."""
    return AuditFilter(
        app_id=caller.app_id,
        action=action,
        outcome=outcome,
        subject=subject,
        request_id=request_id,
        since=stored_time(since) if since else None,
        until=stored_time(until) if until else None,
    )


Filter = Annotated[AuditFilter, Depends(audit_filter)]


def _cursor(after: str | None) -> int:
    if after is None:
        return 0
    if not after.isdigit() or len(after) > 18:
        raise ValidationFailed([FieldError("query.after", "Invalid cursor.")])
    return int(after)


async def _emit_read(svc: ServicesDep, request: Request, caller: Principal, what: str) -> None:
    await svc.events.emit(
        what,
        "success",
        actor=Actor(app_id=caller.app_id, subject=caller.subject, client_id=caller.client_id),
        origin=origin_of(request),
        resource=f"app:{caller.app_id}",
    )


@router.get("/events", summary="Query the audit log")
async def list_events(
    caller: Auditor,
    where: Filter,
    svc: ServicesDep,
    page: PageDep,
    request: Request,
    after: Annotated[str | None, Query(max_length=18, description="next_cursor")] = None,
) -> JSONResponse:
    """The app's audit records matching the filters, oldest first, a page at a time."""
    result = await AuditReader(svc.db).page(where, _cursor(after), page.limit)
    await _emit_read(svc, request, caller, "audit.read")
    return json_response({"data": result.events, "next_cursor": result.next_cursor})


@router.get(
    "/events/export",
    summary="Export the audit log as JSON lines",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-ndjson": {}}}},
)
async def export_events(
    caller: Auditor, where: Filter, svc: ServicesDep, request: Request
) -> StreamingResponse:
    """Every matching record, one JSON object per line (``application/x-ndjson``)."""
    await _emit_read(svc, request, caller, "audit.export")
    return StreamingResponse(
        AuditReader(svc.db).export(where),
        media_type="application/x-ndjson",
        headers={"Cache-Control": "no-store"},
    )
