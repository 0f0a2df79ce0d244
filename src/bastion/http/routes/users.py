"""Users: managed by the app's backend (``users:*`` scopes); ``/v1/users/me`` for users."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from bastion.chat.views import user_view
from bastion.core.errors import FieldError, ValidationFailed
from bastion.core.ids import Kind
from bastion.http.deps import (
    IfMatch,
    PageDep,
    Services,
    ServicesDep,
    cursor_id,
    origin_of,
    path_id,
    requires,
)
from bastion.http.idempotency import IdempotencyKey
from bastion.http.responses import JSONResponse, json_response
from bastion.http.schemas.users import UserCreate, UserOut, UserPage, UserUpdate
from bastion.security.confusables import looks_deceptive
from bastion.security.principal import Principal
from bastion.store.records import UserRecord

router = APIRouter(prefix="/v1/users", tags=["users"])

PRIVATE_FIELDS = ("external_id",)
"""User fields only the user themself and callers holding ``user:read:private`` see
(the customer's own id for the user is often an e-mail address)."""


async def shown(svc: Services, caller: Principal, users: list[UserRecord]) -> list[dict[str, Any]]:
    """The users as this caller may see them: private fields only for the user themself
    and callers holding ``user:read:private``."""
    private = await svc.authz.holds(caller, "user:read:private")
    views = []
    for user in users:
        view = user_view(user)
        if not private and user.id != caller.user_id:
            for name in PRIVATE_FIELDS:
                view.pop(name, None)
        views.append(view)
    return views


async def shown_one(svc: Services, caller: Principal, user: UserRecord) -> dict[str, Any]:
    """One user as this caller may see them."""
    return (await shown(svc, caller, [user]))[0]


ReadUsers = Annotated[Principal, requires("user:read")]
WriteUsers = Annotated[Principal, requires("user:write")]
ReadProfile = Annotated[Principal, requires("profile:read")]


def check_display_name(svc: Services, name: str | None) -> None:
    """Refuse a name that could pass for another (when ``validation.confusable_names``)."""
    if name and svc.settings.validation.confusable_names == "reject" and looks_deceptive(name):
        message = "The name mixes scripts with look-alike letters."
        raise ValidationFailed([FieldError("body.display_name", message)])


@router.post("", status_code=201, response_model=UserOut, summary="Create a user")
async def create_user(
    body: UserCreate,
    caller: WriteUsers,
    svc: ServicesDep,
    request: Request,
    key: IdempotencyKey = None,
) -> Response:
    """Create a user for an id in your own system (409 if that external id exists)."""
    check_display_name(svc, body.display_name)

    async def create() -> Response:
        user = await svc.chat.users.create(
            caller, external_id=body.external_id, display_name=body.display_name
        )
        return json_response(
            await shown_one(svc, caller, user),
            status=201,
            version=user.version,
            location=f"/v1/users/{user.id}",
        )

    return await svc.idempotency.once(request, caller, key, create)


@router.get("", response_model=UserPage, summary="List users")
async def list_users(
    caller: ReadUsers,
    svc: ServicesDep,
    page: PageDep,
    after: Annotated[
        str | None, Query(max_length=40, description="A user id (next_cursor).")
    ] = None,
    before: Annotated[
        str | None, Query(max_length=40, description="A user id (prev_cursor).")
    ] = None,
    external_id: Annotated[str | None, Query(min_length=1, max_length=255)] = None,
    active: Annotated[bool | None, Query()] = None,
) -> JSONResponse:
    """Page through the app's users by id, or look one up by ``external_id``."""
    result = await svc.chat.users.page(
        caller,
        after=cursor_id(Kind.USER, after, "query.after"),
        before=cursor_id(Kind.USER, before, "query.before"),
        limit=page.limit,
        external_id=external_id,
        active=active,
    )
    data = await shown(svc, caller, result.rows)
    return json_response({"data": data, "prev_cursor": result.prev, "next_cursor": result.next})


@router.get("/me", response_model=UserOut, summary="The user the token acts for")
async def me(caller: ReadProfile, svc: ServicesDep) -> JSONResponse:
    """Return the calling user."""
    user = await svc.chat.users.me(caller)
    return json_response(await shown_one(svc, caller, user), version=user.version)


@router.get("/{user_id}", response_model=UserOut, summary="Get a user")
async def get_user(user_id: str, caller: ReadUsers, svc: ServicesDep) -> JSONResponse:
    """Return one of the app's users."""
    user = await svc.chat.users.get(caller, path_id(Kind.USER, user_id, "user"))
    return json_response(await shown_one(svc, caller, user), version=user.version)


@router.patch("/{user_id}", response_model=UserOut, summary="Update a user")
async def update_user(
    user_id: str, body: UserUpdate, caller: WriteUsers, svc: ServicesDep, version: IfMatch
) -> JSONResponse:
    """Apply a JSON Merge Patch; ``If-Match`` makes it conditional on the version."""
    check_display_name(svc, body.display_name)
    changes = body.model_dump(exclude_unset=True)
    user = await svc.chat.users.update(
        caller, path_id(Kind.USER, user_id, "user"), changes, version
    )
    return json_response(await shown_one(svc, caller, user), version=user.version)


@router.post("/{user_id}/deactivation", response_model=UserOut, summary="Deactivate a user")
async def deactivate_user(
    user_id: str, caller: WriteUsers, svc: ServicesDep, request: Request
) -> JSONResponse:
    """Deactivate a user: their tokens stop working at once and their sockets close."""
    user = await svc.chat.users.deactivate(
        caller, path_id(Kind.USER, user_id, "user"), origin_of(request)
    )
    return json_response(await shown_one(svc, caller, user), version=user.version)
