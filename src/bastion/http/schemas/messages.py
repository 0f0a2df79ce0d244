"""Message and reaction schemas."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from bastion.core.text import visible_text
from bastion.http.schemas.common import (
    CleanText,
    MessageId,
    RequestModel,
    ResponseModel,
    UserId,
)

Text = Annotated[
    str,
    StringConstraints(min_length=1, max_length=100_000),
    CleanText,
    AfterValidator(visible_text),
]
ClientMsgId = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")
]


class MessageCreate(RequestModel):
    """Send a message; ``client_msg_id`` makes retries safe."""

    text: Text = Field(description="The message text; its maximum length is a server setting.")
    parent_id: MessageId | None = Field(None, description="Reply in this message's thread.")
    mentions: list[UserId] = Field(default_factory=list, max_length=1000)
    client_msg_id: ClientMsgId | None = Field(
        None, description="An id the client generated: a retry with it returns the original."
    )


class MessageUpdate(RequestModel):
    """Change the text of one's own message."""

    text: Text


class MessageOut(ResponseModel):
    """A message; ``text`` is null once deleted."""

    id: str
    channel_id: str
    author_id: str
    parent_id: str | None
    text: str | None = Field(description="The text as sent (Markdown); null once deleted.")
    html: str | None = Field(
        description="The text rendered from Markdown and sanitised (an allow-list of tags); "
        "safe to insert into a page; null once deleted."
    )
    mentions: list[str]
    client_msg_id: str | None
    reply_count: int
    reactions: dict[str, int] = Field(description="Count per emoji; empty once deleted.")
    own_reactions: list[str] = Field(description="The caller's own; empty once deleted.")
    created_at: str
    edited_at: str | None
    deleted_at: str | None
    deleted: bool
    version: int


class MessagePage(ResponseModel):
    """A page of messages, oldest first; ``prev_cursor`` goes back, ``next_cursor`` forward."""

    data: list[MessageOut]
    prev_cursor: str | None
    next_cursor: str | None


class MessageSearchResults(ResponseModel):
    """Messages matching a search, newest first."""

    data: list[MessageOut]
