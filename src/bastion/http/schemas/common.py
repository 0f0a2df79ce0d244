"""Pieces every schema shares."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, StringConstraints

from bastion.core.ids import Kind, pattern

UserId = Annotated[str, StringConstraints(pattern=pattern(Kind.USER))]
"""A user id in a request body (``usr_`` + ULID)."""

MessageId = Annotated[str, StringConstraints(pattern=pattern(Kind.MESSAGE))]
"""A message id in a request body (``msg_`` + ULID)."""


class RequestModel(BaseModel):
    """A request body: unknown fields are rejected; fields use strict types where lax
    coercion would hide a client's mistake (``"yes"`` is not a boolean)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class ResponseModel(BaseModel):
    """A response body, documented field by field."""

    model_config = ConfigDict(extra="forbid")


class Problem(ResponseModel):
    """An RFC 9457 problem document."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    errors: list[dict[str, str]] | None = None
