"""Search (user tokens, ``chat:read``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from bastion.http.deps import PageDep, ServicesDep, requires
from bastion.http.responses import JSONResponse, json_response
from bastion.http.schemas.messages import MessageSearchResults
from bastion.security.principal import Principal

router = APIRouter(tags=["search"])

# Search reads messages: the same permission as listing them; results come only from
# channels the caller belongs to.
Reader = Annotated[Principal, requires("message:read")]


@router.get(
    "/v1/search/messages",
    response_model=MessageSearchResults,
    summary="Search messages by keywords",
)
async def search_messages(
    caller: Reader,
    svc: ServicesDep,
    page: PageDep,
    q: Annotated[str, Query(min_length=1, max_length=500, description="Words to find.")],
) -> JSONResponse:
    """Messages containing every word of ``q``, newest first, from the caller's channels only.

    Words are matched whole, case-insensitively, after Unicode NFKC normalisation.
    """
    entries = await svc.chat.search.messages(caller, q, page.limit)
    return json_response({"data": [entry.view() for entry in entries]})
