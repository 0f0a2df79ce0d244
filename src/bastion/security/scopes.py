"""The OAuth scopes Bastion understands, and who may hold them.

App backends (``client_credentials``) manage users and mint user tokens; user
tokens read and write chat. Neither kind of token can do the other's work.
"""

from __future__ import annotations

USERS_READ = "users:read"
USERS_WRITE = "users:write"
TOKENS_EXCHANGE = "tokens:exchange"
CHAT_READ = "chat:read"
CHAT_WRITE = "chat:write"
AUDIT_READ = "audit:read"
METRICS_READ = "metrics:read"

BACKEND_SCOPES = frozenset({USERS_READ, USERS_WRITE, TOKENS_EXCHANGE})
"""Scopes an app backend client may be granted."""

USER_SCOPES = frozenset({CHAT_READ, CHAT_WRITE})
"""Scopes a token acting for an end user may carry."""

OPERATOR_SCOPES = frozenset({AUDIT_READ, METRICS_READ})
"""Monitoring scopes, granted only to clients created for them (``bastion audit client``)."""

ALL_SCOPES = BACKEND_SCOPES | USER_SCOPES | OPERATOR_SCOPES

DESCRIPTIONS = {
    USERS_READ: "Read the app's users.",
    USERS_WRITE: "Create, update and deactivate the app's users.",
    TOKENS_EXCHANGE: "Obtain short-lived access tokens for the app's users (RFC 8693).",
    CHAT_READ: "Read the channels, members and messages the user can see.",
    CHAT_WRITE: "Send, edit and react to messages; create and manage channels.",
    AUDIT_READ: "Read and export the app's audit log, and the alert state.",
    METRICS_READ: "Scrape the Prometheus metrics of the whole server.",
}


def parse(scope: str | None) -> frozenset[str]:
    """Split a space-delimited scope string (RFC 6749 §3.3)."""
    return frozenset(scope.split()) if scope else frozenset()


def render(scopes: frozenset[str]) -> str:
    """Join scopes into their wire form, in a stable order."""
    return " ".join(sorted(scopes))
