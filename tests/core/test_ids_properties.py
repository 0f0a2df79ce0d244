"""Property tests for id encoding: any 128-bit value, any text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from ulid import ULID

from bastion.core.ids import Kind, encode_ulid, is_id, new_id


@given(st.integers(min_value=0, max_value=2**128 - 1))
def test_encoding_matches_the_reference_implementation(value: int) -> None:
    """Our Crockford base32 text equals python-ulid's for every 128-bit value."""
    assert encode_ulid(value) == str(ULID.from_int(value))


@given(st.text(max_size=60))
def test_is_id_accepts_only_well_formed_ids(text: str) -> None:
    """Arbitrary text is an id only if it has the prefix and a 26-character ULID."""
    for kind in Kind:
        if is_id(kind, text):
            prefix, _, body = text.partition("_")
            assert prefix == kind.value
            assert len(body) == 26
            assert body == body.upper()


@given(st.sampled_from(list(Kind)))
def test_new_ids_are_valid_and_only_for_their_kind(kind: Kind) -> None:
    """A fresh id is well formed for its kind and for no other."""
    made = new_id(kind)
    assert [k for k in Kind if is_id(k, made)] == [kind]
