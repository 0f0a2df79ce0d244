"""Bans, mutes and channel ACLs: the moderation part of the admin API.

Channel owners and moderators act on the members they outrank; app moderators and
admins act on any channel of the app. Every change is an ``admin.change`` event.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response

from bastion.chat.views import member_view
from bastion.core.ids import Kind
from bastion.http.deps import ServicesDep, origin_of, path_id, requires
from bastion.http.responses import JSONResponse, json_response
from bastion.http.schemas.channels import MemberOut
from bastion.http.schemas.moderation import AclOut, AclUpdate, Sanction
from bastion.security.acl import Entry
from bastion.security.principal import Principal

router = APIRouter(prefix="/v1/channels/{channel_id}", tags=["moderation"])

Ban = Annotated[Principal, requires("member:ban")]
Mute = Annotated[Principal, requires("member:mute")]
ManageAcl = Annotated[Principal, requires("acl:manage")]


def _ids(channel_id: str, user_id: str) -> tuple[str, str]:
    return path_id(Kind.CHANNEL, channel_id, "channel"), path_id(Kind.USER, user_id, "member")


def _acl(channel_id: str, entries: list[Entry]) -> JSONResponse:
    rows = [{"subject": e.subject, "level": e.level, "effect": e.effect} for e in entries]
    return json_response({"channel_id": channel_id, "entries": rows})


@router.put("/bans/{user_id}", response_model=MemberOut, summary="Ban a member")
async def ban_member(
    channel_id: str,
    user_id: str,
    body: Sanction,
    caller: Ban,
    svc: ServicesDep,
    request: Request,
) -> JSONResponse:
    """Ban a member until ``expires_at`` (or until unbanned)."""
    member = await svc.chat.moderation.ban(
        caller, *_ids(channel_id, user_id), body.expires_at, origin_of(request)
    )
    return json_response(member_view(member))


@router.delete("/bans/{user_id}", status_code=204, summary="Lift a ban")
async def unban_member(
    channel_id: str, user_id: str, caller: Ban, svc: ServicesDep, request: Request
) -> Response:
    """Give a banned member back the role they had."""
    await svc.chat.moderation.unban(caller, *_ids(channel_id, user_id), origin_of(request))
    return Response(status_code=204)


@router.put("/mutes/{user_id}", response_model=MemberOut, summary="Mute a member")
async def mute_member(
    channel_id: str,
    user_id: str,
    body: Sanction,
    caller: Mute,
    svc: ServicesDep,
    request: Request,
) -> JSONResponse:
    """Make a member read-only until ``expires_at`` (or until unmuted)."""
    member = await svc.chat.moderation.mute(
        caller, *_ids(channel_id, user_id), body.expires_at, origin_of(request)
    )
    return json_response(member_view(member))


@router.delete("/mutes/{user_id}", status_code=204, summary="Lift a mute")
async def unmute_member(
    channel_id: str, user_id: str, caller: Mute, svc: ServicesDep, request: Request
) -> Response:
    """Give a muted member back the role they had."""
    await svc.chat.moderation.unmute(caller, *_ids(channel_id, user_id), origin_of(request))
    return Response(status_code=204)


@router.get("/acl", response_model=AclOut, summary="A channel's ACL")
async def get_acl(channel_id: str, caller: ManageAcl, svc: ServicesDep) -> JSONResponse:
    """The channel's ACL entries (its owners; admins in any channel)."""
    channel = path_id(Kind.CHANNEL, channel_id, "channel")
    return _acl(channel, await svc.chat.moderation.acl(caller, channel))


@router.put("/acl", response_model=AclOut, summary="Replace a channel's ACL")
async def put_acl(
    channel_id: str, body: AclUpdate, caller: ManageAcl, svc: ServicesDep, request: Request
) -> JSONResponse:
    """Replace every entry of the channel's ACL; deny entries override allow entries."""
    channel = path_id(Kind.CHANNEL, channel_id, "channel")
    entries = [Entry(e.subject, e.level, e.effect) for e in body.entries]
    saved = await svc.chat.moderation.set_acl(caller, channel, entries, origin_of(request))
    return _acl(channel, saved)
