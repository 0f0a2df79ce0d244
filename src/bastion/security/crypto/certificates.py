"""The server certificate: the operator's files, or a self-signed one made at first start."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

from bastion.security.crypto import aead

SELF_SIGNED_HOSTS = ["localhost", "127.0.0.1", "::1"]
_PRIVATE_MODE = 0o600
_DIR_MODE = 0o700


@dataclass(frozen=True, slots=True)
class ServerCertificate:
    """Where the certificate chain and key live, and what to report about them."""

    cert_file: Path
    key_file: Path
    fingerprint: str
    expires: dt.datetime
    self_signed: bool
    created: bool


def describe(cert_file: Path, key_file: Path, *, self_signed: bool = False) -> ServerCertificate:
    """Read an existing certificate's fingerprint and expiry."""
    pem = cert_file.read_bytes()
    return ServerCertificate(
        cert_file=cert_file,
        key_file=key_file,
        fingerprint=aead.certificate_fingerprint(pem),
        expires=aead.certificate_expiry(pem),
        self_signed=self_signed,
        created=False,
    )


def ensure_self_signed(directory: Path, *, now: dt.datetime) -> ServerCertificate:
    """Return the self-signed localhost certificate in ``directory``, creating it if missing.

    A certificate that has expired (or expires within a day) is replaced.
    """
    cert_file, key_file = directory / "server.crt", directory / "server.key"
    if cert_file.exists() and key_file.exists():
        found = describe(cert_file, key_file, self_signed=True)
        if found.expires - now > dt.timedelta(days=1):
            return found
    directory.mkdir(parents=True, exist_ok=True, mode=_DIR_MODE)
    os.chmod(directory, _DIR_MODE)
    cert_pem, key_pem = aead.self_signed_certificate(SELF_SIGNED_HOSTS, now=now)
    _write(key_file, key_pem, _PRIVATE_MODE)
    _write(cert_file, cert_pem, 0o644)
    return dataclasses.replace(describe(cert_file, key_file, self_signed=True), created=True)


def _write(path: Path, data: bytes, mode: int) -> None:
    """Write atomically: a reader never sees half a key."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(tmp, mode)
    os.replace(tmp, path)
