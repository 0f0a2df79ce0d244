"""Unicode rules for text the API stores: names, identifiers and message bodies.

Names and identifiers are normalised to NFC, so that one visible name has one stored
form, and may not contain characters that hide, reorder or fake text:

* control characters (C0, C1, DEL), line and paragraph separators;
* bidirectional controls (U+202A to U+202E, U+2066 to U+2069, U+200E, U+200F, U+061C),
  which reorder what a reader sees (the "Trojan Source" trick);
* invisible format characters (zero-width space U+200B, word joiner U+2060, BOM U+FEFF,
  invisible operators U+2061 to U+2064, U+180E, soft hyphen U+00AD …); a zero-width
  joiner or non-joiner is kept only between two visible characters, where emoji
  sequences and scripts such as Persian and the Indic ones need it, and tag characters
  only inside a flag sequence;
* spaces other than U+0020, private-use, unassigned and surrogate code points;
* more than a few combining marks in a row ("Zalgo" text).

Message bodies are free text: any script, emoji, bidi marks and zero-width characters
are allowed (they are harmless when rendered as text and needed in real writing); only
control characters other than tab and newline and lone surrogates are refused, and a
message must show at least one visible character. Logs escape what they print (see
``bastion.observe.logging``).
"""

from __future__ import annotations

import unicodedata

_JOINERS = frozenset({"\u200c", "\u200d"})
_BLACK_FLAG = "\U0001f3f4"
_TAGS = range(0xE0020, 0xE0080)
_MAX_MARKS = 6
_MESSAGE_CONTROLS_ALLOWED = frozenset({"\t", "\n", "\r"})


class TextRejected(ValueError):
    """Text broke a rule; the message says which, without quoting the text."""


def _visible(ch: str) -> bool:
    return unicodedata.category(ch)[0] in "LMNPS"


def _format_allowed(text: str, i: int) -> bool:
    ch = text[i]
    if ch in _JOINERS:
        return 0 < i < len(text) - 1 and _visible(text[i - 1]) and _visible(text[i + 1])
    if ord(ch) in _TAGS:
        return _BLACK_FLAG in text[:i]
    return False


def _name_problem(text: str) -> str | None:
    marks = 0
    for i, ch in enumerate(text):
        category = unicodedata.category(ch)
        marks = marks + 1 if category[0] == "M" else 0
        if marks > _MAX_MARKS:
            return "has too many combining marks in a row"
        if category in ("Cc", "Zl", "Zp") or (category == "Zs" and ch != " "):
            return "contains a control or special space character"
        if category in ("Cs", "Co", "Cn"):
            return "contains an unassigned, private-use or surrogate code point"
        if category == "Cf" and not _format_allowed(text, i):
            return "contains an invisible or bidirectional formatting character"
    return None


def clean_name(value: str) -> str:
    """A display name or identifier in NFC; raise :class:`TextRejected` if it breaks a rule."""
    text = unicodedata.normalize("NFC", value)
    problem = _name_problem(text)
    if problem is not None:
        raise TextRejected(f"The value {problem}.")
    if not text.strip():
        raise TextRejected("The value is blank.")
    return text


def clean_message(value: str) -> str:
    """A message body: any text except control characters (bar tab/newline) and surrogates."""
    if value.isprintable():
        return value  # no character of category Cc or Cs (or any other non-printable)
    for ch in value:
        category = unicodedata.category(ch)
        if (category == "Cc" and ch not in _MESSAGE_CONTROLS_ALLOWED) or category == "Cs":
            raise TextRejected("The text contains a control character.")
    return value


def visible_text(value: str) -> str:
    """A message must show something: text of nothing but spaces, line breaks and
    invisible characters (zero-width spaces, joiners) is refused."""
    if not any(_visible(ch) for ch in value):
        raise TextRejected("The text is blank.")
    return value


def escape_for_log(value: str) -> str:
    """``value`` with control, bidi and invisible characters written as escapes.

    Log lines are read by people and parsed by tools: a CR/LF in input must not start a
    forged entry, and a bidi override must not reorder what an operator reads.
    """
    if value.isprintable():
        return value
    return "".join(
        ch if ch.isprintable() or ch == " " else ch.encode("unicode_escape").decode("ascii")
        for ch in value
    )
