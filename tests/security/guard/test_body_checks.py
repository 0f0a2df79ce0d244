"""Property tests of the body guards' byte-level checks against Python's own JSON parser."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from bastion.security.guard.body_text import escape_problem
from bastion.security.guard.json_shape import _STRING, max_depth, shape_problem
from bastion.security.guard.request_target import decoded, target_problem

TRICKY = st.characters(categories=["Cs", "Cc", "Lu", "Ll", "So", "Po"]) | st.sampled_from(
    ["\\", '"', "\x00", "\ud800", "\udc00", "\U0001f600", "u", "0"]
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(TRICKY, max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(TRICKY, max_size=4), inner, max_size=4)
    ),
    max_leaves=30,
)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [s for item in value for s in _strings(item)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in [k, *_strings(v)]]
    return []


def _shape(value: Any) -> tuple[int, int, int]:
    """(depth, values, empty containers) of a decoded JSON value."""
    if isinstance(value, list | dict):
        children = list(value.values()) if isinstance(value, dict) else value
        shapes = [_shape(child) for child in children]
        depth = 1 + max((s[0] for s in shapes), default=0)
        return depth, 1 + sum(s[1] for s in shapes), (not children) + sum(s[2] for s in shapes)
    return 0, 1, 0


@given(JSON_VALUES, st.booleans())
def test_escape_check_agrees_with_the_parser(value: Any, ascii_only: bool) -> None:
    """A body is flagged exactly when a decoded string holds NUL or a lone surrogate."""
    body = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")
    decoded_value = json.loads(body.decode("utf-8", "surrogatepass"))
    bad = any(
        ch == "\x00" or unicodedata.category(ch) == "Cs"
        for text in _strings(decoded_value)
        for ch in text
    )
    if not ascii_only:
        return  # raw NUL and surrogates are caught by the byte checks, not the escape scan
    assert (escape_problem(body) is not None) == bad


@given(JSON_VALUES)
def test_shape_matches_the_parser(value: Any) -> None:
    """Depth is exact; the element estimate is values - 1 plus the empty containers."""
    body = json.dumps(value).encode()
    depth, values, empties = _shape(value)
    stripped = _STRING.sub(b'""', body)
    assert max_depth(stripped) == depth
    estimate = stripped.count(b",") + stripped.count(b"[") + stripped.count(b"{")
    assert values - 1 <= estimate <= values - 1 + empties
    assert shape_problem(body, max_depth_allowed=depth, max_elements=estimate) is None
    if depth:
        assert shape_problem(body, max_depth_allowed=depth - 1, max_elements=10**9) is not None


@given(st.binary(max_size=64))
def test_decoded_targets_are_clean_text(raw: bytes) -> None:
    """Whatever the bytes, an accepted target part is UTF-8 text without controls."""
    text = decoded(raw)
    if text is not None:
        assert not any(unicodedata.category(ch) == "Cc" for ch in text)


@given(st.lists(st.sampled_from(["a", "b", "c"]), max_size=6))
def test_a_repeated_name_is_always_refused(names: list[str]) -> None:
    """A query string is refused exactly when a name repeats."""
    query = "&".join(f"{n}=1" for n in names).encode()
    problem = target_problem(b"/v1/users", query, 4096)
    assert (problem is not None) == (len(set(names)) != len(names))
