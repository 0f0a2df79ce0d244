"""Messages, threads and reactions (user tokens, ``chat:*`` scopes)."""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Annotated

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute

from bastion.chat.messages import Draft
from bastion.chat.paging import one_direction
from bastion.core.errors import FieldError, ValidationFailed
from bastion.core.ids import Kind
from bastion.http.deps import (
    Authorized,
    IfMatch,
    PageDep,
    Services,
    ServicesDep,
    cursor_id,
    known_query,
    origin_of,
    path_id,
    requires,
    services,
)
from bastion.http.direct import DirectRoute
from bastion.http.idempotency import IdempotencyKey
from bastion.http.responses import JSONResponse, json_response
from bastion.http.schemas.messages import MessageCreate, MessageOut, MessagePage, MessageUpdate
from bastion.security.principal import Principal

router = APIRouter(tags=["messages"])

# Each route declares the permission it needs; the domain then checks the message itself.
SendMessage = Annotated[Principal, requires("message:send")]
ReadMessages = Annotated[Principal, requires("message:read")]
EditMessage = Annotated[Principal, requires("message:edit:own")]
DeleteMessage = Annotated[Principal, requires("message:delete:own")]
React = Annotated[Principal, requires("reaction:write")]

_EMOJI_JOINERS = {"\u200d", "\ufe0f", "\u20e3"}
_EMOJI_CATEGORIES = {"So", "Sk", "Mn", "Me"}
_MAX_EMOJI_CHARS = 16
_KEYCAP = re.compile("[#*0-9]\ufe0f?\u20e3")


def _message(message_id: str) -> str:
    return path_id(Kind.MESSAGE, message_id, "message")


def reaction_value(value: str, named: tuple[str, ...]) -> str:
    """A reaction is one of the app's named reactions (``validation.reactions``) or an emoji."""
    return value if value in named else emoji(value)


def emoji(value: str) -> str:
    """A reaction is one emoji (with its joiners and modifiers), nothing else."""
    value = unicodedata.normalize("NFC", value)
    symbols = [ch for ch in value if ch not in _EMOJI_JOINERS]
    valid = 0 < len(value) <= _MAX_EMOJI_CHARS and (
        _KEYCAP.fullmatch(value) is not None
        or (
            bool(symbols)
            # ASCII is never part of an emoji except in a keycap ("^" and "`" are Sk).
            and all(
                not ch.isascii() and unicodedata.category(ch) in _EMOJI_CATEGORIES for ch in symbols
            )
            and any(unicodedata.category(ch) == "So" for ch in symbols)
        )
    )
    if not valid:
        raise ValidationFailed([FieldError("path.emoji", "A reaction must be a single emoji.")])
    return value


async def _message_body(request: Request) -> MessageCreate | None:
    """The body as ``MessageCreate``, or None for anything FastAPI should answer."""
    media_type = (request.headers.get("content-type") or "").partition(";")[0]
    if media_type.strip().lower() != "application/json":
        return None
    raw = await request.body()
    try:
        return MessageCreate.model_validate(json.loads(raw))
    except Exception:  # noqa: BLE001 - any failure: FastAPI's handler answers it
        return None


async def send_message(
    channel_id: str,
    body: MessageCreate,
    caller: SendMessage,
    svc: ServicesDep,
    request: Request,
    key: IdempotencyKey = None,
) -> Response:
    """Send a message; a retry with the same ``client_msg_id`` returns the original (200)."""
    return await svc.idempotency.once(
        request, caller, key, lambda: _send(channel_id, body, caller, svc)
    )


router.add_api_route(
    "/v1/channels/{channel_id}/messages",
    send_message,
    methods=["POST"],
    status_code=201,
    response_model=MessageOut,
    responses={200: {"model": MessageOut, "description": "A retry: the original message"}},
    summary="Send a message",
)


def _added_route() -> APIRoute:
    route = router.routes[-1]
    if not isinstance(route, APIRoute):
        raise TypeError("the send route is not an API route")
    return route


_SEND_ROUTE = _added_route()


async def _direct_send(request: Request) -> Response | None:
    """A send with a body ``MessageCreate`` accepts, served with the calls FastAPI would
    make for the route, in its order (the query allow-list, the permission check, the
    services); None for any other, which FastAPI answers (a 422 naming the field, say).
    A test holds the route's dependencies to exactly these."""
    body = await _message_body(request)
    if body is None:
        return None
    await known_query(request)
    caller = await _SEND_PERMISSION(request)
    svc = await services(request)
    key = request.headers.get("idempotency-key")
    channel_id = request.path_params["channel_id"]
    return await send_message(channel_id, body, caller, svc, request, key)


def _permission_check() -> Authorized:
    check = next(d.call for d in _SEND_ROUTE.dependant.dependencies if d.name == "caller")
    if not isinstance(check, Authorized):
        raise TypeError("the send route has no permission check")
    return check


_SEND_PERMISSION = _permission_check()


def direct_send(api: FastAPI) -> DirectRoute:
    """``api`` with plain sends served ahead of its middleware and router
    (``bastion.http.direct``)."""
    return DirectRoute(api, _SEND_ROUTE, _direct_send)


async def _send(channel_id: str, body: MessageCreate, caller: Principal, svc: Services) -> Response:
    draft = Draft(
        text=body.text,
        parent_id=body.parent_id,
        mentions=tuple(body.mentions),
        client_msg_id=body.client_msg_id,
    )
    entry, created = await svc.chat.messages.send(
        caller, path_id(Kind.CHANNEL, channel_id, "channel"), draft
    )
    return json_response(
        entry.view(),
        status=201 if created else 200,
        version=entry.message.version,
        location=f"/v1/messages/{entry.message.id}",
    )


@router.get(
    "/v1/channels/{channel_id}/messages", response_model=MessagePage, summary="List messages"
)
async def list_messages(
    channel_id: str,
    caller: ReadMessages,
    svc: ServicesDep,
    page: PageDep,
    before: Annotated[
        str | None, Query(max_length=40, description="Older than this message id.")
    ] = None,
    after: Annotated[
        str | None, Query(max_length=40, description="Newer than this message id.")
    ] = None,
    parent_id: Annotated[
        str | None, Query(max_length=40, description="Only the replies in this message's thread.")
    ] = None,
    include_replies: Annotated[
        bool, Query(description="false: top-level messages only, no thread replies.")
    ] = True,
) -> JSONResponse:
    """Messages oldest first: the newest page, or the page ``before``/``after`` a message."""
    one_direction(after, before)
    if parent_id is not None and not include_replies:
        message = "A thread holds only replies: parent_id cannot go with include_replies=false."
        raise ValidationFailed([FieldError("query.include_replies", message)])
    result = await svc.chat.messages.page(
        caller,
        path_id(Kind.CHANNEL, channel_id, "channel"),
        before=cursor_id(Kind.MESSAGE, before, "query.before"),
        after=cursor_id(Kind.MESSAGE, after, "query.after"),
        parent_id=parent_id,
        limit=page.limit,
        top_level=not include_replies,
    )
    return json_response(
        {
            "data": [entry.view() for entry in result.entries],
            "prev_cursor": result.prev_cursor,
            "next_cursor": result.next_cursor,
        }
    )


@router.get("/v1/messages/{message_id}", response_model=MessageOut, summary="Get a message")
async def get_message(message_id: str, caller: ReadMessages, svc: ServicesDep) -> JSONResponse:
    """One message from a channel the caller belongs to."""
    entry = await svc.chat.messages.get(caller, _message(message_id))
    return json_response(entry.view(), version=entry.message.version)


@router.patch("/v1/messages/{message_id}", response_model=MessageOut, summary="Edit a message")
async def edit_message(
    message_id: str, body: MessageUpdate, caller: EditMessage, svc: ServicesDep, version: IfMatch
) -> JSONResponse:
    """Change the text of your own message."""
    entry = await svc.chat.messages.edit(caller, _message(message_id), body.text, version)
    return json_response(entry.view(), version=entry.message.version)


@router.delete("/v1/messages/{message_id}", status_code=204, summary="Delete a message")
async def delete_message(
    message_id: str, caller: DeleteMessage, svc: ServicesDep, version: IfMatch, request: Request
) -> Response:
    """Delete your own message (moderators: any); the body is removed, the place kept."""
    await svc.chat.messages.delete(caller, _message(message_id), version, origin_of(request))
    return Response(status_code=204)


@router.put(
    "/v1/messages/{message_id}/reactions/{reaction}",
    response_model=MessageOut,
    summary="Add a reaction",
)
async def add_reaction(
    message_id: str, reaction: str, caller: React, svc: ServicesDep
) -> JSONResponse:
    """React with one emoji or a named reaction; doing it twice changes nothing."""
    value = reaction_value(reaction, svc.settings.validation.reactions)
    entry = await svc.chat.reactions.add(caller, _message(message_id), value)
    return json_response(entry.view(), version=entry.message.version)


@router.delete(
    "/v1/messages/{message_id}/reactions/{reaction}",
    status_code=204,
    summary="Remove a reaction",
)
async def remove_reaction(
    message_id: str, reaction: str, caller: React, svc: ServicesDep
) -> Response:
    """Take your reaction back (204 whether or not it was there)."""
    value = reaction_value(reaction, svc.settings.validation.reactions)
    await svc.chat.reactions.remove(caller, _message(message_id), value)
    return Response(status_code=204)
