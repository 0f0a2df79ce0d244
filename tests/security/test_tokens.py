"""``AccessTokens``: issuing, the verified-token cache, and revocation winning over the cache."""

from __future__ import annotations

from pathlib import Path

import pytest

from bastion.core.clock import FakeClock
from bastion.core.errors import Unauthenticated, Unavailable
from bastion.core.ids import Kind, is_id
from bastion.security.keys import KeyRing, SigningKeyStore
from bastion.security.oauth import rfc9068
from bastion.security.tokens import AccessTokens, IssuedToken, Revocations, Revoked

ISSUER = "https://chat.example.com"
LEEWAY = 30
TTL = 600
APP = "app_01JD0000000000000000000000"
CLIENT = "cli_01JD0000000000000000000000"
USER = "usr_01JD0000000000000000000000"


@pytest.fixture
def keys(tmp_path: Path) -> KeyRing:
    """A signing key ring in a temporary folder."""
    return SigningKeyStore(tmp_path / "keys", None).load_or_create("ES256")


@pytest.fixture
def clock() -> FakeClock:
    """Time that moves only when the test says so."""
    return FakeClock()


def loaded() -> Revocations:
    """A revocation list that has been read from storage (empty)."""
    revocations = Revocations()
    revocations.mark_loaded()
    return revocations


def service(keys: KeyRing, clock: FakeClock, *, cache_size: int = 100) -> AccessTokens:
    """An ``AccessTokens`` with its own revocation list."""
    return AccessTokens(
        keys=keys,
        issuer=ISSUER,
        audience=ISSUER,
        clock=clock,
        leeway=LEEWAY,
        cache_size=cache_size,
        revocations=loaded(),
    )


@pytest.fixture
def tokens(keys: KeyRing, clock: FakeClock) -> AccessTokens:
    """The token service under test, caching verified tokens."""
    return service(keys, clock)


def user_token(tokens: AccessTokens, subject: str = USER) -> IssuedToken:
    """A delegated user token, as token exchange issues it."""
    return tokens.issue(
        app_id=APP,
        client_id=CLIENT,
        subject=subject,
        scopes=frozenset({"chat:read", "chat:write"}),
        ttl=TTL,
        actor=CLIENT,
    )


def test_issue_returns_a_principal_matching_the_token(tokens: AccessTokens) -> None:
    """The issued token authenticates to the same principal the issuer described."""
    issued = user_token(tokens)
    principal = tokens.authenticate(issued.token)
    assert principal == issued.principal
    assert (principal.app_id, principal.client_id, principal.subject) == (APP, CLIENT, USER)
    assert principal.user_id == USER
    assert principal.actor == CLIENT
    assert principal.scopes == frozenset({"chat:read", "chat:write"})
    assert issued.scope == "chat:read chat:write"
    assert issued.expires_in == TTL
    assert principal.expires_at == 1_800_000_000 + TTL
    assert is_id(Kind.TOKEN, principal.token_id)


def test_backend_token_has_no_user_and_no_actor(tokens: AccessTokens) -> None:
    """A client_credentials-style token (subject = client) is not a user token."""
    issued = tokens.issue(
        app_id=APP, client_id=CLIENT, subject=CLIENT, scopes=frozenset({"users:read"}), ttl=TTL
    )
    principal = tokens.authenticate(issued.token)
    assert principal.user_id is None
    assert principal.actor is None


def test_every_issued_token_has_its_own_jti(tokens: AccessTokens) -> None:
    """Two tokens issued in the same instant are distinct, with distinct ``jti``."""
    first, second = user_token(tokens), user_token(tokens)
    assert first.token != second.token
    assert first.principal.token_id != second.principal.token_id


def test_a_verified_token_is_served_from_the_cache(tokens: AccessTokens) -> None:
    """The second use of a token returns the remembered principal, not a re-verified copy."""
    token = user_token(tokens).token
    first = tokens.authenticate(token)
    assert tokens.authenticate(token) is first


def test_with_cache_size_zero_every_use_is_verified(keys: KeyRing, clock: FakeClock) -> None:
    """With the cache disabled, each use verifies again (equal, but a new principal)."""
    tokens = service(keys, clock, cache_size=0)
    token = user_token(tokens).token
    first = tokens.authenticate(token)
    second = tokens.authenticate(token)
    assert second == first
    assert second is not first


def test_the_cache_forgets_the_least_recently_added(keys: KeyRing, clock: FakeClock) -> None:
    """A bounded cache evicts the oldest entry; the evicted token still verifies afresh."""
    tokens = service(keys, clock, cache_size=1)
    one, two = user_token(tokens).token, user_token(tokens).token
    first = tokens.authenticate(one)
    tokens.authenticate(two)
    again = tokens.authenticate(one)
    assert again == first
    assert again is not first


def test_a_revoked_jti_is_refused_even_when_cached(tokens: AccessTokens) -> None:
    """Revoking a token's ``jti`` wins over the cache of verified tokens."""
    issued = user_token(tokens)
    tokens.authenticate(issued.token)
    tokens.revocations.revoke_token(issued.principal.token_id, issued.principal.expires_at)
    with pytest.raises(Unauthenticated):
        tokens.authenticate(issued.token)


def test_revoking_one_token_leaves_the_others(tokens: AccessTokens) -> None:
    """Revocation by ``jti`` refuses that token only."""
    revoked, kept = user_token(tokens), user_token(tokens)
    tokens.revocations.revoke_token(revoked.principal.token_id, revoked.principal.expires_at)
    with pytest.raises(Unauthenticated):
        tokens.authenticate(revoked.token)
    assert tokens.authenticate(kept.token).subject == USER


def test_a_deactivated_subject_is_refused_even_when_cached(tokens: AccessTokens) -> None:
    """Revoking a subject refuses every token of that user, cached or not."""
    cached, fresh = user_token(tokens), user_token(tokens)
    other = user_token(tokens, subject="usr_01JD0000000000000000000001")
    tokens.authenticate(cached.token)
    tokens.revocations.revoke_subject(APP, USER)
    for token in (cached.token, fresh.token):
        with pytest.raises(Unauthenticated):
            tokens.authenticate(token)
    assert tokens.authenticate(other.token).subject == "usr_01JD0000000000000000000001"


def test_subject_revocation_is_per_app(tokens: AccessTokens) -> None:
    """Revoking a subject in another app does not touch this app's user."""
    issued = user_token(tokens)
    tokens.revocations.revoke_subject("app_01JD0000000000000000000009", USER)
    assert tokens.authenticate(issued.token).subject == USER


def test_an_expired_cached_token_is_refused(tokens: AccessTokens, clock: FakeClock) -> None:
    """A cached token is refused once its ``exp`` is ``leeway`` seconds past, and stays refused."""
    token = user_token(tokens).token
    tokens.authenticate(token)
    clock.advance(TTL + LEEWAY - 1)
    assert tokens.authenticate(token).subject == USER
    clock.advance(1)
    with pytest.raises(Unauthenticated):
        tokens.authenticate(token)
    with pytest.raises(Unauthenticated):
        tokens.authenticate(token)


def test_an_expired_uncached_token_is_refused(tokens: AccessTokens, clock: FakeClock) -> None:
    """A token first presented after expiry fails verification itself."""
    token = user_token(tokens).token
    clock.advance(TTL + LEEWAY)
    with pytest.raises(Unauthenticated):
        tokens.authenticate(token)


def test_a_token_from_another_issuer_configuration_is_refused(
    keys: KeyRing, clock: FakeClock
) -> None:
    """A token signed with our key but for another issuer/audience is refused."""
    elsewhere = AccessTokens(
        keys=keys,
        issuer="https://other.example",
        audience="https://other.example",
        clock=clock,
        leeway=LEEWAY,
        cache_size=10,
        revocations=loaded(),
    )
    with pytest.raises(Unauthenticated):
        service(keys, clock).authenticate(user_token(elsewhere).token)


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c", "x" * 10_000])
def test_garbage_is_unauthenticated(tokens: AccessTokens, token: str) -> None:
    """Anything that is not a valid token raises ``Unauthenticated``, never another error."""
    with pytest.raises(Unauthenticated):
        tokens.authenticate(token)


def test_purge_forgets_only_expired_revocations(tokens: AccessTokens) -> None:
    """``purge`` drops revoked jtis whose tokens have expired anyway, keeping live ones."""
    live, dead = user_token(tokens), user_token(tokens)
    revocations = tokens.revocations
    revocations.revoke_token(live.principal.token_id, 2_000_000_000)
    revocations.revoke_token(dead.principal.token_id, 1_000)
    revocations.purge(now=1_800_000_000)
    assert revocations.is_revoked(live.principal)
    assert not revocations.is_revoked(dead.principal)


def test_no_token_is_accepted_before_revocations_are_loaded(
    keys: KeyRing, clock: FakeClock
) -> None:
    """Until the deactivated users are known, every token is refused with 503, not accepted."""
    revocations = Revocations()
    tokens = AccessTokens(
        keys=keys,
        issuer=ISSUER,
        audience=ISSUER,
        clock=clock,
        leeway=LEEWAY,
        cache_size=10,
        revocations=revocations,
    )
    issued = user_token(tokens)
    with pytest.raises(Unavailable):
        tokens.authenticate(issued.token)
    revocations.mark_loaded()
    assert tokens.authenticate(issued.token).subject == issued.principal.subject


def test_a_subject_cutoff_refuses_older_tokens_even_when_cached(
    tokens: AccessTokens, clock: FakeClock
) -> None:
    """Tokens issued before a subject's cutoff are refused; later ones and others are not."""
    old = user_token(tokens)
    other = user_token(tokens, subject="usr_01JD0000000000000000000001")
    tokens.authenticate(old.token)
    clock.advance(5)
    tokens.revocations.cut_off(APP, USER, int(clock.timestamp()))
    with pytest.raises(Unauthenticated):
        tokens.authenticate(old.token)
    assert tokens.authenticate(other.token).subject != USER
    assert tokens.authenticate(user_token(tokens).token).subject == USER


def test_an_app_cutoff_refuses_every_subject_of_that_app_only(
    tokens: AccessTokens, clock: FakeClock
) -> None:
    """An app-wide cutoff covers users and the backend itself, in that app only."""
    user, backend = user_token(tokens), user_token(tokens, subject=CLIENT)
    clock.advance(1)
    tokens.revocations.cut_off("app_01JD0000000000000000000009", None, int(clock.timestamp()))
    assert tokens.authenticate(user.token).subject == USER
    tokens.revocations.cut_off(APP, None, int(clock.timestamp()))
    for token in (user.token, backend.token):
        with pytest.raises(Unauthenticated):
            tokens.authenticate(token)


def test_cutoffs_only_move_forward(tokens: AccessTokens) -> None:
    """A later call with an earlier time keeps the later cutoff."""
    tokens.revocations.cut_off(APP, USER, 2_000)
    tokens.revocations.cut_off(APP, USER, 1_000)
    assert tokens.revocations.cutoff(APP, USER) == 2_000
    tokens.revocations.cut_off(APP, None, 1_500)
    assert tokens.revocations.cutoff(APP, USER) == 2_000
    assert tokens.revocations.cutoff(APP, "usr_01JD0000000000000000000001") == 1_500


def test_listeners_hear_every_kind_of_revocation(tokens: AccessTokens) -> None:
    """Subscribers learn of token, subject and cutoff revocations at once."""
    heard: list[Revoked] = []
    tokens.revocations.subscribe(heard.append)
    tokens.revocations.revoke_token("tok_x", 10, app_id=APP)
    tokens.revocations.revoke_subject(APP, USER)
    tokens.revocations.cut_off(APP, None, 5)
    assert heard == [
        Revoked(app_id=APP, token_id="tok_x"),
        Revoked(app_id=APP, subject=USER),
        Revoked(app_id=APP, subject=None),
    ]


def test_an_oversized_token_is_refused(keys: KeyRing, clock: FakeClock) -> None:
    """The configured maximum size applies before any parsing."""
    small = AccessTokens(
        keys=keys,
        issuer=ISSUER,
        audience=ISSUER,
        clock=clock,
        leeway=LEEWAY,
        cache_size=0,
        revocations=loaded(),
        max_token_bytes=100,
    )
    with pytest.raises(Unauthenticated):
        small.authenticate(user_token(small).token)


def test_confirmations_are_issued_and_read_back(tokens: AccessTokens) -> None:
    """cnf carries jkt (RFC 9449) and x5t#S256 (RFC 8705), alone or together."""
    for jkt, x5t in (("k", None), (None, "c"), ("k", "c")):
        issued = tokens.issue(
            app_id=APP,
            client_id=CLIENT,
            subject=CLIENT,
            scopes=frozenset(),
            ttl=TTL,
            jkt=jkt,
            x5t=x5t,
        )
        principal = tokens.authenticate(issued.token)
        assert (principal.jkt, principal.x5t) == (jkt, x5t)


@pytest.mark.parametrize(
    "cnf", [{"jkt": "k", "kid": "x"}, {"x5t#S256": 1}, {}, "x5t#S256", {"x5t": "abc"}]
)
def test_unknown_or_malformed_confirmations_are_refused(
    tokens: AccessTokens, keys: KeyRing, clock: FakeClock, cnf: object
) -> None:
    """A cnf with a method Bastion does not check, or a malformed one, fails verification."""
    claims = user_token(tokens).principal
    now = int(clock.timestamp())
    token = rfc9068.encode(
        keys.active,
        keys.alg,
        {
            "iss": ISSUER,
            "aud": ISSUER,
            "sub": claims.subject,
            "client_id": CLIENT,
            "app_id": APP,
            "scope": "chat:read",
            "iat": now,
            "nbf": now,
            "exp": now + TTL,
            "jti": "tok_01JD0000000000000000000000",
            "cnf": cnf,
        },
    )
    with pytest.raises(Unauthenticated):
        tokens.authenticate(token)


def test_every_token_of_a_disabled_app_is_refused_until_it_is_enabled(
    tokens: AccessTokens, clock: FakeClock
) -> None:
    """A disabled app's tokens are refused whenever they were issued, cached or not, and
    its listeners hear it once; another app is untouched; enabling it lifts the refusal."""
    heard: list[Revoked] = []
    tokens.revocations.subscribe(heard.append)
    cached = user_token(tokens)
    tokens.authenticate(cached.token)
    tokens.revocations.set_disabled_apps([APP])
    tokens.revocations.set_disabled_apps([APP])
    clock.advance(60)
    later = user_token(tokens)
    for token in (cached.token, later.token):
        with pytest.raises(Unauthenticated):
            tokens.authenticate(token)
    assert heard == [Revoked(app_id=APP)]
    tokens.revocations.set_disabled_apps(["app_01JD0000000000000000000009"])
    assert tokens.authenticate(later.token).app_id == APP
