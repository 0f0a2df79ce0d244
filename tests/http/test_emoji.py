"""Property tests for the reaction validator: one emoji, never text or markup."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bastion.core.errors import ValidationFailed
from bastion.http.routes.messages import emoji

FORBIDDEN_ASCII = set("<>&\"'/ ")
COMMON = [
    "\U0001f44d",
    "\u2764\ufe0f",
    "\U0001f389",
    "\U0001f44d\U0001f3fd",
    "\U0001f1eb\U0001f1f7",
    "\U0001f469\u200d\U0001f4bb",
    "1\ufe0f\u20e3",
    "#\ufe0f\u20e3",
]


def _check(text: str) -> str | ValidationFailed:
    try:
        return emoji(text)
    except ValidationFailed as exc:
        return exc


@given(st.text(max_size=40))
def test_only_emoji_pass(text: str) -> None:
    """Whatever passes is short and holds no ASCII letters, markup, spaces or controls."""
    outcome = _check(text)
    if isinstance(outcome, ValidationFailed):
        assert [e.field for e in outcome.errors] == ["path.emoji"]
        return
    assert 0 < len(outcome) <= 16
    assert not any(ch.isascii() and (ch.isalpha() or ch in FORBIDDEN_ASCII) for ch in outcome)
    assert all(ord(ch) >= 0x20 for ch in outcome)


@given(st.sampled_from(COMMON))
def test_common_emoji_are_accepted(value: str) -> None:
    """The reactions people actually use are accepted unchanged."""
    assert emoji(value) == value
