"""The wire shapes in bastion.chat.views: they match the documented schemas, field for field."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from bastion.chat.views import channel_view, member_view, message_view, user_view
from bastion.core.ids import Kind, new_id
from bastion.http.schemas.channels import MemberOut
from bastion.http.schemas.messages import MessageOut
from bastion.http.schemas.users import UserOut
from bastion.store.records import ChannelRecord, MemberRecord, MessageRecord, UserRecord

WHEN = datetime(2026, 11, 28, 3, 4, 5, 678_901, tzinfo=UTC)
APP = new_id(Kind.APP)
CHANNEL = new_id(Kind.CHANNEL)
AUTHOR = new_id(Kind.USER)


BASE = MessageRecord(
    seq=7,
    id=new_id(Kind.MESSAGE),
    app_id=APP,
    channel_id=CHANNEL,
    author_id=AUTHOR,
    parent_id=None,
    body="hello",
    mentions=(AUTHOR,),
    client_msg_id="c-1",
    reply_count=2,
    created_at=WHEN,
    edited_at=None,
    deleted_at=None,
    version=3,
)


def _message(**changes: Any) -> MessageRecord:
    return replace(BASE, **changes)


def test_message_view_matches_the_message_schema() -> None:
    """Every MessageOut field is present, nothing else; internal columns stay out."""
    message = _message()
    view = message_view(message, {"👍": 2}, {"👍"})
    assert MessageOut.model_validate(view).model_dump() == view
    assert "seq" not in view
    assert "app_id" not in view
    assert view["text"] == "hello"
    assert view["mentions"] == [AUTHOR]
    assert view["created_at"] == "2026-11-28T03:04:05.678Z"
    assert view["edited_at"] is None
    assert view["deleted"] is False


def test_message_view_sorts_reactions_and_defaults_to_none() -> None:
    """Reaction counts and own reactions come out sorted; without them they are empty."""
    view = message_view(_message(), {"🚀": 1, "🎉": 3}, {"🚀", "🎉"})
    assert list(view["reactions"]) == sorted(["🚀", "🎉"])
    assert view["own_reactions"] == sorted(["🚀", "🎉"])
    bare = message_view(_message())
    assert bare["reactions"] == {}
    assert bare["own_reactions"] == []


def test_deleted_message_view_keeps_its_place_not_its_body() -> None:
    """A deleted message shows deleted=true, null text and its deletion time in UTC."""
    later = datetime(2026, 11, 28, 5, 0, 0, 1_000, tzinfo=timezone(timedelta(hours=2)))
    view = message_view(_message(body=None, mentions=(), deleted_at=later, edited_at=later))
    assert view["deleted"] is True
    assert view["text"] is None
    assert view["mentions"] == []
    assert view["deleted_at"] == "2026-11-28T03:00:00.001Z"
    assert view["edited_at"] == "2026-11-28T03:00:00.001Z"
    assert MessageOut.model_validate(view).deleted is True


def test_member_view_matches_the_member_schema() -> None:
    """A membership shows its read position; a member who read nothing shows nulls."""
    member = MemberRecord(
        channel_id=CHANNEL,
        user_id=AUTHOR,
        app_id=APP,
        role="moderator",
        joined_at=WHEN,
        last_read_seq=0,
        last_read_message_id=None,
        last_read_at=None,
    )
    view = member_view(member)
    assert MemberOut.model_validate(view).model_dump(mode="json") == view
    assert view["last_read_message_id"] is None
    assert view["last_read_at"] is None
    assert "last_read_seq" not in view


def test_channel_view_hides_internal_columns() -> None:
    """A channel's view carries no app id, activity time or last message id."""
    channel = ChannelRecord(
        id=CHANNEL,
        app_id=APP,
        type="group",
        name="room",
        description=None,
        created_by=AUTHOR,
        member_count=2,
        last_message_id=new_id(Kind.MESSAGE),
        last_message_at=None,
        activity_at=WHEN,
        archived=False,
        created_at=WHEN,
        updated_at=WHEN,
        version=1,
    )
    view = channel_view(channel)
    assert {"app_id", "activity_at", "last_message_id"}.isdisjoint(view)
    assert view["last_message_at"] is None
    assert view["created_at"] == "2026-11-28T03:04:05.678Z"


def test_user_view_matches_the_user_schema() -> None:
    """A user's view has exactly the UserOut fields and no app id."""
    user = UserRecord(
        id=AUTHOR,
        app_id=APP,
        external_id="alice",
        display_name="Alice",
        active=True,
        created_at=WHEN,
        updated_at=WHEN,
        version=1,
    )
    view = user_view(user)
    assert UserOut.model_validate(view).model_dump() == view
    assert "app_id" not in view
