# ruff: noqa: RUF001 - names in many scripts are the point of these tests
"""The Unicode rules for names and message text, by example and by property."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bastion.core.text import (
    TextRejected,
    clean_message,
    clean_name,
    escape_for_log,
    visible_text,
)

ACCEPTED_NAMES = [
    "Zoë",
    "José Álvarez",
    "山田太郎",
    "Алиса Смирнова",
    "محمد",
    "می\u200cخواهم",  # Persian needs the zero-width non-joiner
    "क्\u200dष",  # Devanagari with a zero-width joiner
    "שלום",
    "Ελένη",
    "👩\u200d👩\u200d👧 family",
    "\U0001f3f4\U000e0067\U000e0062\U000e0065\U000e006e\U000e0067\U000e007f fan",
    "1\ufe0f\u20e3",
    "O'Brien-Smith",
]

REJECTED_NAMES = [
    "a\u200bb",  # zero-width space
    "\u200dab",  # joiner at the start
    "ab\u200d",  # joiner at the end
    "\u202egnp.exe",  # right-to-left override
    "admin\u2066",  # isolate
    "a\u200eb",  # left-to-right mark
    "a\u061cb",  # Arabic letter mark
    "a\ufeffb",  # BOM
    "a\u2060b",  # word joiner
    "a\u00adb",  # soft hyphen
    "a\nb",
    "a\tb",
    "a\x7fb",
    "a\x85b",
    "a\u00a0b",  # no-break space
    "a\u2028b",
    "a\ue000b",  # private use
    "a\U000e0067b",  # tag outside a flag
    "a" + "\u0301" * 8,  # Zalgo
]


@pytest.mark.parametrize("name", ACCEPTED_NAMES)
def test_real_names_in_every_script_are_accepted(name: str) -> None:
    """Names in many scripts, with emoji and needed joiners, pass unchanged (already NFC)."""
    assert clean_name(name) == unicodedata.normalize("NFC", name)


@pytest.mark.parametrize("name", REJECTED_NAMES)
def test_hidden_or_reordering_characters_are_rejected(name: str) -> None:
    """Controls, bidi overrides, invisible characters and Zalgo text are refused."""
    with pytest.raises(TextRejected):
        clean_name(name)


def test_names_are_normalised_to_nfc() -> None:
    """e + combining acute is stored as é."""
    assert clean_name("Zoe\u0308") == "Zoë"
    assert clean_name("Zoe\u0308") == clean_name("Zoë")


def test_message_text_allows_what_is_harmless() -> None:
    """Bidi marks, zero-width characters, tabs and newlines are fine in message text."""
    text = "line 1\n\tשלום \u202b(rtl)\u202c a\u200bb 👍🏽"
    assert clean_message(text) == text


@pytest.mark.parametrize("text", ["a\x00b", "a\x1bb", "a\x7fb", "\ud800"])
def test_message_text_refuses_controls_and_surrogates(text: str) -> None:
    """Escape sequences, NUL, DEL and lone surrogates are not message text."""
    with pytest.raises(TextRejected):
        clean_message(text)


@pytest.mark.parametrize("text", [" ", "\n\n", " \t\r\n", "\u00a0\u3000", "\u200b\u2060\ufeff"])
def test_message_text_that_shows_nothing_is_blank(text: str) -> None:
    """Spaces of any kind, line breaks and invisible characters alone are no message."""
    with pytest.raises(TextRejected):
        visible_text(text)


@pytest.mark.parametrize("text", ["a", " . ", "\u200b👍", "\n\n1\n", "\u05d0"])
def test_one_visible_character_is_enough(text: str) -> None:
    """A letter, digit, punctuation mark or emoji anywhere makes the text visible."""
    assert visible_text(text) == text


@given(st.text())
def test_clean_names_are_nfc_and_free_of_hidden_characters(value: str) -> None:
    """Anything clean_name accepts is NFC and has no control, bidi or stray format char."""
    try:
        cleaned = clean_name(value)
    except TextRejected:
        return
    assert unicodedata.is_normalized("NFC", cleaned)
    assert cleaned.strip()
    for i, ch in enumerate(cleaned):
        category = unicodedata.category(ch)
        assert category not in {"Cc", "Cs", "Co", "Cn", "Zl", "Zp"}
        if category == "Cf":
            assert ch in "\u200c\u200d" or 0xE0020 <= ord(ch) < 0xE0080
            if ch in "\u200c\u200d":
                assert 0 < i < len(cleaned) - 1


@given(st.text(st.characters(categories=["L", "N", "P", "S"]), min_size=1))
def test_visible_text_is_always_a_valid_name(value: str) -> None:
    """Letters, digits, punctuation and symbols of any script are always accepted."""
    assert clean_name(value) == unicodedata.normalize("NFC", value)


@given(st.text())
def test_clean_name_is_idempotent(value: str) -> None:
    """Cleaning a cleaned name changes nothing."""
    try:
        cleaned = clean_name(value)
    except TextRejected:
        return
    assert clean_name(cleaned) == cleaned


@given(st.text())
def test_escaped_log_text_has_no_line_breaks_or_controls(value: str) -> None:
    """Whatever the input, its log form holds no line break, control or bidi character."""
    escaped = escape_for_log(value)
    assert all(ch.isprintable() or ch == " " for ch in escaped)
    assert "\n" not in escaped
    assert "\r" not in escaped
