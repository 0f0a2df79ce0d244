"""Errors of the key management layer (they never carry key material or credentials)."""

from __future__ import annotations

from bastion.core.errors import Unavailable


class KeyUnavailable(Exception):
    """A key cannot be used: missing, retired, destroyed, or the keyring cannot be opened."""


class KeySourceDown(Unavailable):
    """The key source (Vault) cannot be reached or refused the request.

    Clients get a plain 503; ``reason`` tells the operator what to fix and never holds
    a token or key.
    """

    def __init__(self, reason: str) -> None:
        super().__init__("Encryption keys are unavailable right now.", retry_after=5)
        self.reason = reason
