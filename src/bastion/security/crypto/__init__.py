"""Encryption at rest, key management and certificates."""
