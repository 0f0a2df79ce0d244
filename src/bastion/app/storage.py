"""The database and the envelope encryption of its sensitive columns."""

from __future__ import annotations

from bastion.core.clock import Clock, SystemClock
from bastion.core.settings import Settings
from bastion.security.crypto import vault
from bastion.security.crypto.envelope import EnvelopeCipher
from bastion.security.crypto.keyring import LocalKeyring, MasterKey
from bastion.security.crypto.keysource import ManagedKeySource
from bastion.security.crypto.shredlist import ShredList
from bastion.store.db import Database, create_engine


def database(settings: Settings) -> Database:
    """The database for the configured URL."""
    db = settings.database
    engine = create_engine(
        settings.database_url,
        pool_size=db.pool_size,
        connect_timeout=db.connect_timeout,
        echo=db.echo,
        sqlite_inline=db.sqlite_inline,
        tls_ca_file=settings.transport.database_ca_file,
    )
    return Database(engine, cipher=column_cipher(settings, SystemClock()))


def key_source(settings: Settings) -> ManagedKeySource:
    """Where KEKs live (``encryption.key_source``): Vault Transit or the local keyring."""
    encryption = settings.encryption
    if encryption.key_source == "vault":
        shredded = ShredList(settings.server.data_dir / "keys" / "shredded.json")
        return vault.connect(encryption.vault, shredded)
    secret = encryption.master_passphrase
    raw = encryption.master_key
    master = MasterKey(
        passphrase=secret.get_secret_value() if secret else None,
        raw_key=raw.get_secret_value() if raw else None,
        dev_key_file=settings.keyring_file.with_name("master.key"),
    )
    ring = LocalKeyring(settings.keyring_file, master)
    if not ring.exists():
        ring.create(SystemClock().now())
    return ring


def column_cipher(settings: Settings, clock: Clock) -> EnvelopeCipher:
    """Envelope encryption of sensitive columns under the key source's per-app KEKs."""
    return EnvelopeCipher(
        key_source(settings), clock, cache_seconds=settings.encryption.dek_cache_seconds
    )
