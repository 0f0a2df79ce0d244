"""RFC 7636 (PKCE): the Appendix B known answer, and the S256-only rules."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bastion.security.oauth import rfc7636

# RFC 7636 Appendix B.
APPENDIX_B_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
APPENDIX_B_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

_UNRESERVED = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~"


def test_appendix_b_known_answer() -> None:
    """S256 of the Appendix B verifier is the Appendix B challenge."""
    assert rfc7636.s256(APPENDIX_B_VERIFIER) == APPENDIX_B_CHALLENGE
    assert rfc7636.verify(APPENDIX_B_VERIFIER, APPENDIX_B_CHALLENGE)


def test_only_s256_is_accepted() -> None:
    """plain, a missing method and a missing challenge are all refused."""
    assert rfc7636.challenge_error(APPENDIX_B_CHALLENGE, "S256") is None
    assert rfc7636.challenge_error(APPENDIX_B_CHALLENGE, "plain") is not None
    assert rfc7636.challenge_error(APPENDIX_B_CHALLENGE, None) is not None
    assert rfc7636.challenge_error(None, "S256") is not None
    assert rfc7636.challenge_error(APPENDIX_B_VERIFIER + "x", "S256") is not None


def test_a_missing_or_malformed_verifier_fails() -> None:
    """No verifier, too short, or with characters outside the unreserved set: no match."""
    assert not rfc7636.verify(None, APPENDIX_B_CHALLENGE)
    assert not rfc7636.verify("short", rfc7636.s256("short"))
    bad = "a" * 42 + "!"
    assert not rfc7636.verify(bad, rfc7636.s256(bad))


@given(st.text(alphabet=_UNRESERVED, min_size=43, max_size=128))
def test_any_valid_verifier_matches_only_its_own_challenge(verifier: str) -> None:
    """Every well-formed verifier verifies against its S256 and not against another's."""
    challenge = rfc7636.s256(verifier)
    assert rfc7636.challenge_error(challenge, "S256") is None
    assert rfc7636.verify(verifier, challenge)
    assert not rfc7636.verify(verifier, APPENDIX_B_CHALLENGE) or verifier == APPENDIX_B_VERIFIER
