"""User schemas."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, StringConstraints

from bastion.http.schemas.common import CleanName, NotNull, RequestModel, ResponseModel

ExternalId = Annotated[
    str, StringConstraints(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9._:@|+=-]+$")
]
DisplayName = Annotated[
    str, StringConstraints(min_length=1, max_length=1000, strip_whitespace=True), CleanName
]


class UserCreate(RequestModel):
    """Create a user for an id in the customer's own system."""

    external_id: ExternalId = Field(description="The user's id in your system; unique per app.")
    display_name: DisplayName


class UserUpdate(RequestModel):
    """JSON Merge Patch of a user (RFC 7396): only the fields present change."""

    display_name: Annotated[DisplayName | None, NotNull] = None


class UserOut(ResponseModel):
    """A user."""

    id: str
    external_id: str | None = Field(
        None, description="Shown to the user themself and to holders of user:read:private."
    )
    display_name: str
    active: bool
    created_at: str
    updated_at: str
    version: int


class UserPage(ResponseModel):
    """A page of users by id; ``prev_cursor`` goes back (``before``), ``next_cursor`` on."""

    data: list[UserOut]
    prev_cursor: str | None
    next_cursor: str | None
