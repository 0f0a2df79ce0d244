"""The channel-list cursor: round trips, and any forged value is a validation error."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.chat.channels import decode_cursor, encode_cursor
from bastion.core.errors import ValidationFailed
from bastion.core.ids import Kind, new_id


@given(st.datetimes(timezones=st.just(UTC)))
def test_cursor_round_trips(moment: datetime) -> None:
    """What encode_cursor writes, decode_cursor reads back exactly."""
    channel_id = new_id(Kind.CHANNEL)
    assert decode_cursor(encode_cursor(moment, channel_id)) == (moment, channel_id)


@given(st.text(max_size=200))
def test_any_other_text_is_valid_or_a_validation_error(text: str) -> None:
    """Forged cursors never raise anything but ValidationFailed (422)."""
    outcome = _decode(text)
    if isinstance(outcome, ValidationFailed):
        assert [e.field for e in outcome.errors] == ["query.after"]
    else:
        moment, channel_id = outcome
        assert moment.tzinfo is not None
        assert isinstance(channel_id, str)


def _decode(text: str) -> tuple[datetime, str] | ValidationFailed:
    try:
        return decode_cursor(text)
    except ValidationFailed as exc:
        return exc


def test_naive_times_are_refused() -> None:
    """A cursor whose time has no zone is refused."""
    forged = encode_cursor(datetime(2026, 1, 1), "ch_x")  # noqa: DTZ001 - the forgery under test
    with pytest.raises(ValidationFailed):
        decode_cursor(forged)
