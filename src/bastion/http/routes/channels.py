"""Channels, their members and read positions (user tokens, ``chat:*`` scopes)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from bastion.chat.channels import ChannelEntry
from bastion.chat.views import channel_view, member_view, message_view
from bastion.core.ids import Kind
from bastion.http.deps import (
    IfMatch,
    PageDep,
    Services,
    ServicesDep,
    cursor_id,
    path_id,
    requires,
)
from bastion.http.idempotency import IdempotencyKey
from bastion.http.responses import JSONResponse, json_response
from bastion.http.schemas.channels import (
    ChannelCreate,
    ChannelOut,
    ChannelPage,
    ChannelUpdate,
    MemberAdd,
    MemberOut,
    MemberPage,
    MemberUpdate,
    ReadOut,
    ReadUpdate,
)
from bastion.security.principal import Principal

router = APIRouter(prefix="/v1/channels", tags=["channels"])

# Each route declares the permission it needs; the domain then checks the channel itself.
CreateChannel = Annotated[Principal, requires("channel:create")]
ReadChannel = Annotated[Principal, requires("channel:read")]
UpdateChannel = Annotated[Principal, requires("channel:update")]
ReadMembers = Annotated[Principal, requires("member:read")]
AddMember = Annotated[Principal, requires("member:add")]
UpdateMember = Annotated[Principal, requires("member:update")]
RemoveMember = Annotated[Principal, requires("member:remove")]
WriteReceipt = Annotated[Principal, requires("receipt:write")]


def entry_view(entry: ChannelEntry) -> dict[str, Any]:
    """A channel with the caller's membership, unread count and last message."""
    return {
        **channel_view(entry.channel),
        # None for a reader who holds an ACL grant but is not a member.
        "membership": member_view(entry.member) if entry.member else None,
        "unread_count": entry.unread_count,
        "last_message": message_view(entry.last_message) if entry.last_message else None,
    }


def _channel(channel_id: str) -> str:
    return path_id(Kind.CHANNEL, channel_id, "channel")


@router.post(
    "",
    status_code=201,
    response_model=ChannelOut,
    responses={200: {"model": ChannelOut, "description": "The existing direct channel"}},
    summary="Create a channel",
)
async def create_channel(
    body: ChannelCreate,
    caller: CreateChannel,
    svc: ServicesDep,
    request: Request,
    key: IdempotencyKey = None,
) -> Response:
    """Create a group or broadcast channel, or open (get or create) a direct channel."""
    return await svc.idempotency.once(request, caller, key, lambda: _create(body, caller, svc))


async def _create(body: ChannelCreate, caller: Principal, svc: Services) -> Response:
    entry, created = await svc.chat.channels.create(
        caller,
        type_=body.type,
        name=body.name,
        description=body.description,
        members=list(body.members),
    )
    return json_response(
        entry_view(entry),
        status=201 if created else 200,
        version=entry.channel.version,
        location=f"/v1/channels/{entry.channel.id}",
    )


@router.get("", response_model=ChannelPage, summary="List my channels")
async def list_channels(
    caller: ReadChannel,
    svc: ServicesDep,
    page: PageDep,
    after: Annotated[
        str | None, Query(max_length=200, description="A page's next_cursor: the page after it.")
    ] = None,
    before: Annotated[
        str | None, Query(max_length=200, description="A page's prev_cursor: the page before it.")
    ] = None,
    include_archived: Annotated[bool, Query()] = False,
) -> JSONResponse:
    """The caller's channels, most recently active first, with unread counts."""
    result = await svc.chat.channels.list_mine(
        caller, after=after, before=before, limit=page.limit, include_archived=include_archived
    )
    return json_response(
        {
            "data": [entry_view(e) for e in result.entries],
            "prev_cursor": result.prev_cursor,
            "next_cursor": result.next_cursor,
        }
    )


@router.get("/{channel_id}", response_model=ChannelOut, summary="Get a channel")
async def get_channel(channel_id: str, caller: ReadChannel, svc: ServicesDep) -> JSONResponse:
    """One channel the caller belongs to."""
    entry = await svc.chat.channels.get(caller, _channel(channel_id))
    return json_response(entry_view(entry), version=entry.channel.version)


@router.patch("/{channel_id}", response_model=ChannelOut, summary="Update or archive a channel")
async def update_channel(
    channel_id: str, body: ChannelUpdate, caller: UpdateChannel, svc: ServicesDep, version: IfMatch
) -> JSONResponse:
    """JSON Merge Patch: ``name``/``description`` (moderators), ``archived`` (owners)."""
    changes = body.model_dump(exclude_unset=True)
    entry = await svc.chat.channels.update(caller, _channel(channel_id), changes, version)
    return json_response(entry_view(entry), version=entry.channel.version)


@router.get("/{channel_id}/members", response_model=MemberPage, summary="List members")
async def list_members(
    channel_id: str,
    caller: ReadMembers,
    svc: ServicesDep,
    page: PageDep,
    after: Annotated[
        str | None, Query(max_length=40, description="A user id (next_cursor).")
    ] = None,
    before: Annotated[
        str | None, Query(max_length=40, description="A user id (prev_cursor).")
    ] = None,
) -> JSONResponse:
    """A page of the channel's members, by user id."""
    result = await svc.chat.members.page(
        caller,
        _channel(channel_id),
        after=cursor_id(Kind.USER, after, "query.after"),
        before=cursor_id(Kind.USER, before, "query.before"),
        limit=page.limit,
    )
    return json_response(
        {
            "data": [member_view(m) for m in result.rows],
            "prev_cursor": result.prev,
            "next_cursor": result.next,
        }
    )


@router.post(
    "/{channel_id}/members", status_code=201, response_model=MemberOut, summary="Add a member"
)
async def add_member(
    channel_id: str,
    body: MemberAdd,
    caller: AddMember,
    svc: ServicesDep,
    request: Request,
    key: IdempotencyKey = None,
) -> Response:
    """Add a user to a group or broadcast channel (owners; moderators for lower roles)."""

    async def add() -> Response:
        member = await svc.chat.members.add(caller, _channel(channel_id), body.user_id, body.role)
        return json_response(
            member_view(member),
            status=201,
            version=member.version,
            location=f"/v1/channels/{channel_id}/members/{member.user_id}",
        )

    return await svc.idempotency.once(request, caller, key, add)


@router.get("/{channel_id}/members/{user_id}", response_model=MemberOut, summary="Get a member")
async def get_member(
    channel_id: str, user_id: str, caller: ReadMembers, svc: ServicesDep
) -> JSONResponse:
    """One member of a channel the caller belongs to."""
    member = await svc.chat.members.get(
        caller, _channel(channel_id), path_id(Kind.USER, user_id, "member")
    )
    return json_response(member_view(member), version=member.version)


@router.patch(
    "/{channel_id}/members/{user_id}", response_model=MemberOut, summary="Change a member's role"
)
async def update_member(
    channel_id: str,
    user_id: str,
    body: MemberUpdate,
    caller: UpdateMember,
    svc: ServicesDep,
    version: IfMatch,
) -> JSONResponse:
    """Change a member's role within what the caller's own role allows."""
    member = await svc.chat.members.set_role(
        caller, _channel(channel_id), path_id(Kind.USER, user_id, "member"), body.role, version
    )
    return json_response(member_view(member), version=member.version)


@router.delete(
    "/{channel_id}/members/{user_id}", status_code=204, summary="Remove a member, or leave"
)
async def remove_member(
    channel_id: str, user_id: str, caller: RemoveMember, svc: ServicesDep, version: IfMatch
) -> Response:
    """Remove a member (owners and moderators), or leave by naming yourself."""
    await svc.chat.members.remove(
        caller, _channel(channel_id), path_id(Kind.USER, user_id, "member"), version
    )
    return Response(status_code=204)


@router.put("/{channel_id}/read", response_model=ReadOut, summary="Mark messages as read")
async def mark_read(
    channel_id: str, body: ReadUpdate, caller: WriteReceipt, svc: ServicesDep
) -> JSONResponse:
    """Move the caller's read position forward to a message; returns the unread count."""
    state = await svc.chat.receipts.mark_read(caller, _channel(channel_id), body.message_id)
    return json_response(
        {
            "channel_id": state.member.channel_id,
            "last_read_message_id": state.member.last_read_message_id,
            "last_read_at": member_view(state.member)["last_read_at"],
            "unread_count": state.unread_count,
        }
    )
