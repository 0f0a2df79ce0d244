"""HashiCorp Vault Transit as the key source: Vault holds the KEKs; Bastion never sees them.

Data keys are wrapped by ``POST <mount>/encrypt/<key>`` and opened by
``POST <mount>/decrypt/<key>``. The Transit key is created with ``derived=true`` and
every call names the derivation context ``bastion/kek/v1|<app id>|<AAD>``: Vault
encrypts under a key derived for that app *and* that data key's associated data, so a
wrapping moved to another app, owner, purpose or key id does not open (Vault answers
400). The AAD travels in the context rather than in Transit's ``associated_data``
because Vault versions that predate that field ignore it, which would drop the
binding without a word.

KEK versions are the Transit key's versions (ciphertexts start ``vault:vN:``):
``rotate`` is ``keys/<key>/rotate``, retiring is ``min_decryption_version`` through
``keys/<key>/config``, destroying is ``keys/<key>/trim``, and key ages come from the
creation times ``GET keys/<key>`` lists.

Backups: each backup file is sealed under a fresh ``datakey/plaintext`` of a second
Transit key (``backup_key_name``, also derived, the backup id as context), whose
wrapped form the backup header carries. A backup therefore opens only with Vault.

Shredded data key ids are kept in a local ``ShredList``: Transit has no room for them.
Every Vault failure becomes ``KeySourceDown`` with an operator-readable reason that
never contains the token.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Callable
from typing import Any, TypeVar

import hvac
import hvac.exceptions

from bastion.core.settings import VaultSettings
from bastion.observe.logging import get_logger
from bastion.security.crypto import aead
from bastion.security.crypto.errors import KeySourceDown, KeyUnavailable
from bastion.security.crypto.keysource import BackupKey, KeyStatus
from bastion.security.crypto.shredlist import ShredList

T = TypeVar("T")
_log = get_logger("bastion.crypto")
_CIPHERTEXT = re.compile(r"^vault:v(\d+):")
_TOO_OLD = "disallowed by policy"
_MAX_REASON = 160


def read_token(settings: VaultSettings) -> str:
    """The Vault token, from the setting or from its file (e.g. written by Vault Agent)."""
    if settings.token is not None:
        return settings.token.get_secret_value()
    path = settings.token_file
    if path is None:
        raise KeySourceDown("no Vault token: set encryption.vault.token or token_file")
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise KeySourceDown(f"cannot read the Vault token file {path}: {exc.strerror}") from None
    if not token:
        raise KeySourceDown(f"the Vault token file {path} is empty")
    return token


def connect(settings: VaultSettings, shredded: ShredList) -> VaultTransit:
    """A Transit key source for ``settings`` (no request is made yet)."""
    token = read_token(settings)
    client = hvac.Client(
        url=settings.address,
        token=token,
        verify=str(settings.ca_file) if settings.ca_file else True,
        timeout=settings.timeout_seconds,
        namespace=settings.namespace,
        # A redirect would carry the token to wherever Vault's answer points.
        allow_redirects=False,
    )
    return VaultTransit(client.secrets.transit, settings, shredded, token)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _version_of(ciphertext: str) -> int:
    found = _CIPHERTEXT.match(ciphertext)
    if found is None:
        raise aead.InvalidCiphertext
    return int(found.group(1))


def _created(value: Any) -> dt.datetime:
    """A version's creation time: Unix seconds (symmetric keys) or an RFC 3339 field."""
    if isinstance(value, dict):
        return dt.datetime.fromisoformat(str(value["creation_time"]).replace("Z", "+00:00"))
    return dt.datetime.fromtimestamp(int(value), dt.UTC)


class VaultTransit:
    """The ``ManagedKeySource`` backed by Vault Transit (see the module docstring)."""

    name = "vault"
    remote = True

    def __init__(
        self, transit: Any, settings: VaultSettings, shredded: ShredList, token: str
    ) -> None:
        self._transit = transit
        self._settings = settings
        self._shredded = shredded
        self._token = token

    # -- data keys --------------------------------------------------------------------
    def wrap(self, app_id: str, dek: bytes, aad: bytes) -> tuple[int, str]:
        """Encrypt ``dek`` with the Transit key's newest version, bound to app and AAD."""
        key = self._settings.key_name
        answer = self._call(
            f"encrypt/{key}",
            lambda: self._transit.encrypt_data(
                key, plaintext=_b64(dek), context=self._context(app_id, aad), **self._mount()
            ),
        )
        ciphertext = str(answer["data"]["ciphertext"])
        return _version_of(ciphertext), ciphertext

    def unwrap(self, app_id: str, version: int, wrapped: str, aad: bytes) -> bytes:
        """Decrypt a wrapping made by ``wrap``; its recorded version must match."""
        if _version_of(wrapped) != version:
            raise aead.InvalidCiphertext
        key = self._settings.key_name
        answer = self._decrypt(key, wrapped, self._context(app_id, aad), version)
        return base64.b64decode(answer, validate=True)

    def record_destroyed(self, key_ids: list[str]) -> None:
        """Remember shredded data keys in the local shred list."""
        self._shredded.add(key_ids)

    def is_destroyed(self, key_id: str) -> bool:
        """Whether a data key was shredded."""
        return key_id in self._shredded

    # -- versions -----------------------------------------------------------------------
    def status(self) -> KeyStatus:
        """Versions and creation times of the KEK, and the backup key's newest version."""
        kek = self._read(self._settings.key_name)
        versions = tuple(sorted((int(v), _created(t)) for v, t in kek["keys"].items()))
        backup = self._read(self._settings.backup_key_name)
        return KeyStatus(
            primary=int(kek.get("latest_version") or versions[-1][0]),
            min_decryption_version=int(kek["min_decryption_version"]),
            versions=versions,
            backup_primary=int(backup.get("latest_version") or max(map(int, backup["keys"]))),
        )

    def rotate(self, now: dt.datetime) -> int:
        """Rotate the Transit key; the new version wraps every data key made from now on."""
        return self._rotate(self._settings.key_name)

    def rotate_backup(self, now: dt.datetime) -> int:
        """Rotate the backup Transit key; new backups use its new version."""
        return self._rotate(self._settings.backup_key_name)

    def set_min_decryption_version(self, version: int) -> None:
        """Set the Transit key's ``min_decryption_version``: older versions stop decrypting."""
        key = self._settings.key_name
        latest = int(self._read(key)["latest_version"])
        if not 1 <= version <= latest:
            raise ValueError(f"no KEK version {version}")
        self._call(
            f"keys/{key}/config",
            lambda: self._transit.update_key_configuration(
                key, min_decryption_version=version, **self._mount()
            ),
        )

    def destroy_versions_below(self, version: int) -> list[int]:
        """Trim the Transit key: versions below ``version`` are deleted from Vault."""
        key = self._settings.key_name
        info = self._read(key)
        if version > int(info["min_decryption_version"]):
            raise ValueError("retire the versions (min_decryption_version) first")
        first = max(1, int(info.get("min_available_version") or 0))
        self._call(
            f"keys/{key}/trim",
            lambda: self._transit.trim_key(key, min_version=version, **self._mount()),
        )
        return list(range(first, version))

    # -- backups --------------------------------------------------------------------------
    def new_backup_key(self, backup_id: str) -> BackupKey:
        """A fresh data key from the backup Transit key, bound to ``backup_id``."""
        key = self._settings.backup_key_name
        answer = self._call(
            f"datakey/plaintext/{key}",
            lambda: self._transit.generate_data_key(
                key,
                key_type="plaintext",
                context=_b64(self._backup_context(backup_id)),
                bits=256,
                **self._mount(),
            ),
        )
        data = answer["data"]
        ciphertext = str(data["ciphertext"])
        plaintext = base64.b64decode(str(data["plaintext"]), validate=True)
        return BackupKey(_version_of(ciphertext), plaintext, ciphertext)

    def open_backup_key(self, version: int, wrapped: str | None, backup_id: str) -> bytes:
        """Ask Vault to decrypt the file key a backup header carries."""
        if wrapped is None:
            raise KeyUnavailable("this backup was made with a local keyring, not Vault")
        if _version_of(wrapped) != version:
            raise KeyUnavailable("the backup header's key version does not match its key")
        key = self._settings.backup_key_name
        context = _b64(self._backup_context(backup_id))
        try:
            return base64.b64decode(self._decrypt(key, wrapped, context, version), validate=True)
        except aead.InvalidCiphertext:
            raise KeyUnavailable("Vault cannot open this backup's key") from None

    # -- plumbing -------------------------------------------------------------------------
    @staticmethod
    def _context(app_id: str, aad: bytes) -> str:
        return _b64(b"bastion/kek/v1|" + app_id.encode() + b"|" + aad)

    @staticmethod
    def _backup_context(backup_id: str) -> bytes:
        return b"bastion/backup/v1|" + backup_id.encode()

    def _mount(self) -> dict[str, str]:
        return {"mount_point": self._settings.mount}

    def _decrypt(self, key: str, ciphertext: str, context: str, version: int) -> str:
        try:
            answer = self._transit.decrypt_data(
                key, ciphertext=ciphertext, context=context, **self._mount()
            )
        except hvac.exceptions.InvalidRequest as exc:
            if any(_TOO_OLD in str(e) for e in exc.errors or ()):
                raise KeyUnavailable(f"KEK version {version} is retired") from None
            # Vault's answer to a wrong context or altered ciphertext: it does not open.
            raise aead.InvalidCiphertext from None
        except (hvac.exceptions.VaultError, OSError) as exc:
            raise self._down(f"decrypt/{key}", exc) from None
        return str(answer["data"]["plaintext"])

    def _read(self, key: str) -> dict[str, Any]:
        answer = self._call(f"keys/{key}", lambda: self._transit.read_key(key, **self._mount()))
        data: dict[str, Any] = answer["data"]
        return data

    def _rotate(self, key: str) -> int:
        self._call(f"keys/{key}/rotate", lambda: self._transit.rotate_key(key, **self._mount()))
        return int(self._read(key)["latest_version"])

    def _call(self, path: str, request: Callable[[], T]) -> T:
        try:
            return request()
        except (hvac.exceptions.VaultError, OSError) as exc:
            raise self._down(path, exc) from None

    def _down(self, path: str, exc: Exception) -> KeySourceDown:
        where = f"{self._settings.mount}/{path}"
        if isinstance(exc, OSError):
            reason = (
                f"Vault at {self._settings.address} did not answer {where} "
                f"({type(exc).__name__}): check encryption.vault.address, the network and "
                "encryption.vault.ca_file"
            )
        else:
            reason = f"Vault refused {where}: {self._explain(exc)}"
        _log.warning("crypto.key_source_failed", source=self.name, reason=reason)
        return KeySourceDown(reason)

    def _explain(self, exc: Exception) -> str:
        said = self._said(exc)
        if isinstance(exc, hvac.exceptions.Forbidden | hvac.exceptions.Unauthorized):
            return (
                f"{said or 'permission denied'} (check that the token is valid and that "
                "its policy allows this path)"
            )
        if isinstance(exc, hvac.exceptions.VaultDown):
            return f"{said or 'unavailable'} (Vault is sealed or in standby: unseal it)"
        if isinstance(exc, hvac.exceptions.InvalidPath):
            return "no such path (is the Transit engine mounted there and the key created?)"
        if isinstance(exc, hvac.exceptions.RateLimitExceeded):
            return "rate limited by Vault; retry later"
        return said or type(exc).__name__

    def _said(self, exc: Exception) -> str:
        """Vault's own error text, on one line, bounded, with the token scrubbed."""
        errors = getattr(exc, "errors", None) or []
        text = " ".join(" ".join(str(e).split()) for e in errors)
        text = text.replace(self._token, "[token]") if self._token else text
        return text[:_MAX_REASON]
