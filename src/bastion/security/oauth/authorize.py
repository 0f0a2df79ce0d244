"""RFC 6749 §4.1.1: the authorization request, checked before anyone logs in.

Errors about the client or the redirect URI are shown to the user and never
redirected (§4.1.2.1: an unverified redirect URI would make us an open redirector).
Every other error goes back to the client's redirect URI with ``state`` and, per
RFC 9207, ``iss``. Redirect URIs are compared as exact strings (RFC 9700 §4.1.3).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit, urlunsplit

from bastion.security import scopes as scope_names
from bastion.security.oauth import oidc, rfc7636
from bastion.security.oauth.clients import AUTHORIZATION_CODE, Client

_MAX_STATE = 1024
_PROMPTS = frozenset({"none", "login", "consent"})


class PageError(Exception):
    """An error shown on our own page: the client or its redirect URI is not trusted."""


@dataclass(frozen=True, slots=True)
class RedirectError(Exception):
    """An error sent back to the client's (verified) redirect URI (§4.1.2.1)."""

    redirect_uri: str
    error: str
    description: str
    state: str | None


@dataclass(frozen=True, slots=True)
class AuthorizationRequest:
    """A checked authorization request."""

    client_id: str
    redirect_uri: str
    scope: frozenset[str]
    state: str | None
    code_challenge: str
    nonce: str | None
    prompt: str | None

    def as_dict(self) -> dict[str, object]:
        """Plain data, to keep with the interaction."""
        return {
            "client_id": self.client_id,
            "redirect_uri": self.redirect_uri,
            "scope": scope_names.render(self.scope),
            "state": self.state,
            "code_challenge": self.code_challenge,
            "nonce": self.nonce,
            "prompt": self.prompt,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> AuthorizationRequest:
        """Rebuild from ``as_dict`` output."""
        return cls(
            client_id=str(data["client_id"]),
            redirect_uri=str(data["redirect_uri"]),
            scope=scope_names.parse(str(data["scope"])),
            state=_opt(data.get("state")),
            code_challenge=str(data["code_challenge"]),
            nonce=_opt(data.get("nonce")),
            prompt=_opt(data.get("prompt")),
        )


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


def check(params: Mapping[str, str], client: Client | None) -> AuthorizationRequest:
    """Validate an authorization request, raising ``PageError`` or ``RedirectError``."""
    if client is None or not client.record.usable or not client.allows(AUTHORIZATION_CODE):
        raise PageError("The application that sent you here is not known.")
    redirect_uri = params.get("redirect_uri")
    # Exact string comparison: no prefix, case, path or port leeway.
    if redirect_uri is None or redirect_uri not in client.profile.redirect_uris:
        raise PageError("The application sent you here with an unregistered return address.")
    state = params.get("state")

    def fail(error: str, description: str) -> RedirectError:
        return RedirectError(redirect_uri, error, description, state)

    if state is not None and len(state) > _MAX_STATE:
        raise fail("invalid_request", "state is too long.")
    if "request" in params:  # OpenID Connect Core §3.1.2.6 names one error for each
        raise fail("request_not_supported", "Request objects are not supported.")
    if "request_uri" in params:
        raise fail("request_uri_not_supported", "Request object URIs are not supported.")
    if params.get("response_type") != "code":
        raise fail("unsupported_response_type", "Only response_type=code is supported.")
    if params.get("response_mode", "query") != "query":
        raise fail("invalid_request", "Only response_mode=query is supported.")
    problem = rfc7636.challenge_error(
        params.get("code_challenge"), params.get("code_challenge_method")
    )
    if problem:
        raise fail("invalid_request", problem)
    prompt = params.get("prompt")
    if prompt is not None and prompt not in _PROMPTS:
        raise fail("invalid_request", "Unsupported prompt value.")
    return AuthorizationRequest(
        client_id=client.id,
        redirect_uri=redirect_uri,
        scope=_scope(params.get("scope"), client, fail),
        state=state,
        code_challenge=params["code_challenge"],
        nonce=params.get("nonce"),
        prompt=prompt,
    )


def _scope(
    requested: str | None, client: Client, fail: Callable[[str, str], RedirectError]
) -> frozenset[str]:
    allowed = (client.record.scopes & scope_names.USER_SCOPES) | {oidc.OPENID}
    wanted = scope_names.parse(requested)
    if not wanted:
        return allowed & scope_names.DEFAULT_USER_SCOPES
    if not wanted <= allowed:
        raise fail("invalid_scope", "The requested scope is not available to this client.")
    return wanted


def redirect_to(redirect_uri: str, params: Mapping[str, str | None]) -> str:
    """``redirect_uri`` with ``params`` added to its query (§4.1.2: keep existing query)."""
    parts = urlsplit(redirect_uri)
    extra = urlencode({k: v for k, v in params.items() if v is not None})
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


def error_redirect(error: RedirectError, issuer: str) -> str:
    """The redirect carrying an error (§4.1.2.1, RFC 9207 ``iss``)."""
    return redirect_to(
        error.redirect_uri,
        {
            "error": error.error,
            "error_description": error.description,
            "state": error.state,
            "iss": issuer,
        },
    )
