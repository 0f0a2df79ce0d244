"""Property tests for token-request form handling (RFC 6749 §3.2)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bastion.core.errors import OAuthError
from bastion.security.oauth.server import single_valued

PAIRS = st.lists(
    st.tuples(st.sampled_from(["grant_type", "scope", "a", "b"]), st.text(max_size=20)), max_size=8
)


@given(PAIRS)
def test_repeated_parameters_are_refused(form: list[tuple[str, str]]) -> None:
    """A form with a repeated name is invalid_request; otherwise every non-empty value is kept."""
    names = [name for name, _ in form]
    outcome = _parse(form)
    if isinstance(outcome, OAuthError):
        assert outcome.error == "invalid_request"
        assert len(set(names)) < len(names)
    else:
        assert len(set(names)) == len(names)
        assert outcome == {name: value for name, value in form if value}


def _parse(form: list[tuple[str, str]]) -> dict[str, str] | OAuthError:
    try:
        return single_valued(form)
    except OAuthError as exc:
        return exc
