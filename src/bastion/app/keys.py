"""Signing keys, the password hasher and the outbound (SSRF) guard, built from settings."""

from __future__ import annotations

from bastion.core.settings import Settings
from bastion.security.key_rotation import RotationPolicy
from bastion.security.keys import KeyRing, SigningKeyStore
from bastion.security.outbound import OutboundGuard, OutboundPolicy
from bastion.security.passwords import SecretHasher


def key_store(settings: Settings) -> SigningKeyStore:
    """The folder of signing keys."""
    passphrase = settings.auth.keys_passphrase
    return SigningKeyStore(
        settings.server.data_dir / "keys",
        passphrase.get_secret_value() if passphrase else None,
    )


def signing_keys(settings: Settings) -> KeyRing:
    """Load the signing keys, generating the first ones on first start."""
    return key_store(settings).load_or_create(settings.auth.signing_alg)


def rotation_policy(settings: Settings) -> RotationPolicy:
    """When keys rotate, and how long a retired key is kept (its tokens' longest life)."""
    auth, oauth = settings.auth, settings.oauth
    return RotationPolicy(
        period_days=oauth.key_rotation_days,
        publish_seconds=oauth.key_publish_seconds,
        keep_seconds=max(auth.client_token_ttl, auth.user_token_ttl) + auth.leeway,
        check_seconds=oauth.key_check_seconds,
    )


def secret_hasher(settings: Settings) -> SecretHasher:
    """The argon2id hasher with the configured cost."""
    auth = settings.auth
    return SecretHasher(
        time_cost=auth.argon2_time_cost,
        memory_kib=auth.argon2_memory_kib,
        parallelism=auth.argon2_parallelism,
    )


def outbound_guard(settings: Settings) -> OutboundGuard:
    """The SSRF guard every outbound fetch (webhooks, IdP metadata) goes through."""
    limits = settings.validation
    return OutboundGuard(
        OutboundPolicy.of(
            allow_http=limits.outbound_allow_http,
            allow_networks=limits.outbound_allow_networks,
            timeout_seconds=limits.outbound_timeout_seconds,
            max_bytes=limits.outbound_max_bytes,
            max_redirects=limits.outbound_max_redirects,
        )
    )
