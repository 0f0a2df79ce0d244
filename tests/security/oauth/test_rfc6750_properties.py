"""Property tests for the Bearer header parser: any header value, one of two outcomes."""

from __future__ import annotations

import re

from hypothesis import given
from hypothesis import strategies as st

from bastion.core.errors import Unauthenticated
from bastion.security.oauth import rfc6750

B64TOKEN = re.compile(r"[A-Za-z0-9\-._~+/]+=*")


@given(st.text(max_size=300))
def test_any_header_yields_a_b64token_or_unauthenticated(value: str) -> None:
    """Every header value either gives an RFC 6750 b64token or raises Unauthenticated."""
    try:
        token = rfc6750.bearer_token(value)
    except Unauthenticated:
        return
    assert B64TOKEN.fullmatch(token)
    assert value.strip().lower().startswith("bearer")


@given(st.from_regex(B64TOKEN, fullmatch=True))
def test_every_b64token_is_extracted_unchanged(token: str) -> None:
    """A well-formed token comes back exactly as sent."""
    assert rfc6750.bearer_token(f"Bearer {token}") == token
