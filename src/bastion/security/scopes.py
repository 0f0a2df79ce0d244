"""The OAuth scopes Bastion understands, and who may hold them.

App backends (``client_credentials``) manage users and mint user tokens; user
tokens read and write chat. Neither kind of token can do the other's work.
"""

from __future__ import annotations

USERS_READ = "users:read"
USERS_WRITE = "users:write"
TOKENS_EXCHANGE = "tokens:exchange"
CLIENTS_READ = "clients:read"
CLIENTS_WRITE = "clients:write"
CHAT_READ = "chat:read"
CHAT_WRITE = "chat:write"
AUDIT_READ = "audit:read"
METRICS_READ = "metrics:read"
ADMIN_READ = "admin:read"
ADMIN_WRITE = "admin:write"

BACKEND_SCOPES = frozenset({USERS_READ, USERS_WRITE, TOKENS_EXCHANGE, CLIENTS_READ, CLIENTS_WRITE})
"""Scopes an app backend client may be granted."""

USER_SCOPES = frozenset({CHAT_READ, CHAT_WRITE, ADMIN_READ, ADMIN_WRITE, AUDIT_READ})
"""Scopes a token acting for an end user may carry; the user's app roles decide whether
they are of any use (``audit:read`` only for auditors and admins, for instance). Never
``metrics:read``: those metrics cover the whole server, not one app."""

DEFAULT_USER_SCOPES = frozenset({CHAT_READ, CHAT_WRITE})
"""What a user token carries when the backend asks for no scope: chat only."""

OPERATOR_SCOPES = frozenset({AUDIT_READ, METRICS_READ})
"""Monitoring scopes, granted only to clients created for them (``bastion audit client``)."""

ALL_SCOPES = BACKEND_SCOPES | USER_SCOPES | OPERATOR_SCOPES

DESCRIPTIONS = {
    USERS_READ: "Read the app's users.",
    USERS_WRITE: "Create, update and deactivate the app's users.",
    TOKENS_EXCHANGE: "Obtain short-lived access tokens for the app's users (RFC 8693).",
    CLIENTS_READ: "Read the app's OAuth clients.",
    CLIENTS_WRITE: "Register OAuth clients, change them and rotate their secrets.",
    CHAT_READ: "Read the channels, members and messages the user can see.",
    CHAT_WRITE: "Send, edit and react to messages; create and manage channels.",
    AUDIT_READ: "Read and export the app's audit log.",
    METRICS_READ: "Scrape the Prometheus metrics and read the alert state of the whole server.",
    ADMIN_READ: "Read the app's role assignments and policy (for users holding such a role).",
    ADMIN_WRITE: "Change the app's role assignments and policy (for users holding such a role).",
}


def parse(scope: str | None) -> frozenset[str]:
    """Split a space-delimited scope string (RFC 6749 §3.3)."""
    return frozenset(scope.split()) if scope else frozenset()


def render(scopes: frozenset[str]) -> str:
    """Join scopes into their wire form, in a stable order."""
    return " ".join(sorted(scopes))
