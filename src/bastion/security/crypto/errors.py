"""Errors of the key management layer (they never carry key material)."""

from __future__ import annotations


class KeyUnavailable(Exception):
    """A key cannot be used: missing, retired, destroyed, or the keyring cannot be opened."""
