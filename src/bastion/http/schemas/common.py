"""Pieces every schema shares."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic_core import PydanticCustomError

from bastion.core.ids import Kind, pattern
from bastion.core.text import clean_message, clean_name

UserId = Annotated[str, StringConstraints(pattern=pattern(Kind.USER))]
"""A user id in a request body (``usr_`` + ULID)."""

MessageId = Annotated[str, StringConstraints(pattern=pattern(Kind.MESSAGE))]
"""A message id in a request body (``msg_`` + ULID)."""


CleanName = AfterValidator(clean_name)
"""NFC, no control, bidi or invisible characters (``bastion.core.text``)."""

CleanText = AfterValidator(clean_message)
"""Free text: anything but control characters (bar tab and newline) and surrogates."""


def _not_null(value: object) -> object:
    if value is None:
        raise PydanticCustomError("not_null", "This field cannot be removed; leave it out instead.")
    return value


NotNull = AfterValidator(_not_null)
"""For a merge-patch field that always has a value: RFC 7396 reads ``null`` as "remove
the field", which it cannot be. Defaults are not validated, so leaving it out is fine."""


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
