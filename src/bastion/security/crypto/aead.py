"""Every use of the ``cryptography`` library in Bastion, behind a small recipe API.

Nothing else imports ``cryptography`` (an import-linter contract says so), so this is
the one module to review for how keys and ciphertexts are made:

- ``seal``/``unseal``: AES-256-GCM with a fresh 96-bit random nonce per message and
  caller-supplied associated data (AAD). ``unseal`` raises ``InvalidCiphertext`` for
  every failure and never says which check failed.
- ``derive_key``: HKDF-SHA256, used to give each app its own key from a root key.
- ``derive_master_key``: scrypt, for the keyring's master key from a passphrase.
- ``index_hmac``/``index_mac``: HMAC-SHA256, for blind-index terms.
- ``self_signed_certificate``/``certificate_fingerprint``: the localhost certificate
  the server makes at first start, and the SHA-256 fingerprint it reports.
- ``certificate_names``/``distinguished_name``: the subject and alternative names of a
  client certificate, for mutual-TLS client authentication (RFC 8705).
"""

from __future__ import annotations

import datetime as dt
import hmac
import ipaddress
import os
from collections.abc import Callable
from dataclasses import dataclass

from cryptography import x509
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_BYTES = 32
"""AES-256."""
NONCE_BYTES = 12
TAG_BYTES = 16
OVERHEAD = NONCE_BYTES + TAG_BYTES
"""Bytes a sealed value carries beyond its plaintext."""
# Mozilla's "intermediate" guidance caps server certificate lifetime at 366 days.
_CERT_DAYS = 365


class InvalidCiphertext(Exception):
    """A ciphertext failed authentication: wrong key, wrong context, or tampered."""

    def __init__(self) -> None:
        super().__init__("the ciphertext could not be opened")


def new_key() -> bytes:
    """A fresh random 256-bit key."""
    return AESGCM.generate_key(bit_length=256)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` bound to ``aad``: nonce ‖ ciphertext ‖ tag."""
    nonce = os.urandom(NONCE_BYTES)
    return nonce + AESGCM(key).encrypt(nonce, plaintext, aad)


def unseal(key: bytes, sealed: bytes, aad: bytes) -> bytes:
    """Open a value made by ``seal`` with the same key and AAD, or raise ``InvalidCiphertext``."""
    if len(sealed) < OVERHEAD or len(key) != KEY_BYTES:
        raise InvalidCiphertext
    try:
        return AESGCM(key).decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], aad)
    except InvalidTag:
        raise InvalidCiphertext from None


def derive_key(root: bytes, info: bytes, salt: bytes = b"bastion/v1") -> bytes:
    """A 256-bit key derived from ``root`` for the purpose named by ``info`` (HKDF-SHA256)."""
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=salt, info=info).derive(root)


def self_signed_certificate(hosts: list[str], *, now: dt.datetime) -> tuple[bytes, bytes]:
    """A P-256 key and a self-signed server certificate for ``hosts``, both PEM."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=_CERT_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def certificate_fingerprint(cert_pem: bytes) -> str:
    """The SHA-256 fingerprint of the first certificate in ``cert_pem``, as AA:BB:… hex."""
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def certificate_expiry(cert_pem: bytes) -> dt.datetime:
    """When the first certificate in ``cert_pem`` stops being valid (aware UTC)."""
    return x509.load_pem_x509_certificate(cert_pem).not_valid_after_utc


@dataclass(frozen=True, slots=True)
class CertificateNames:
    """Who a certificate names: its subject (RFC 4514 string) and alternative names."""

    subject_dn: str
    dns: tuple[str, ...]
    uris: tuple[str, ...]
    ips: tuple[str, ...]
    emails: tuple[str, ...]


def certificate_names(der: bytes) -> CertificateNames:
    """The names in a DER certificate; ``ValueError`` if it cannot be read."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = x509.SubjectAlternativeName([])
    return CertificateNames(
        subject_dn=cert.subject.rfc4514_string(),
        dns=tuple(san.get_values_for_type(x509.DNSName)),
        uris=tuple(san.get_values_for_type(x509.UniformResourceIdentifier)),
        ips=tuple(str(ip) for ip in san.get_values_for_type(x509.IPAddress)),
        emails=tuple(san.get_values_for_type(x509.RFC822Name)),
    )


def distinguished_name(text: str) -> str:
    """``text`` read as an RFC 4514 distinguished name and written back in the same
    form a certificate's subject is (``ValueError`` if it is not one)."""
    name = x509.Name.from_rfc4514_string(text)
    if not len(name):
        raise ValueError("an empty distinguished name")
    return name.rfc4514_string()


def derive_master_key(passphrase: str, salt: bytes, *, n: int, r: int, p: int) -> bytes:
    """A 256-bit key from a passphrase with scrypt (RFC 7914)."""
    return Scrypt(salt=salt, length=KEY_BYTES, n=n, r=r, p=p).derive(passphrase.encode())


def index_hmac(key: bytes, message: bytes) -> bytes:
    """HMAC-SHA256 of ``message`` under ``key`` (blind-index terms).

    The standard library's one-shot HMAC (OpenSSL underneath) is several times faster
    per call than building a ``cryptography`` HMAC object, and a message has many words.
    """
    return hmac.digest(key, message, "sha256")


def index_mac(key: bytes) -> Callable[[bytes], bytes]:
    """HMAC-SHA256 under ``key`` with the key schedule done once, for many short messages.

    The returned function gives the same digests as ``index_hmac(key, message)``; each
    call copies the keyed state instead of hashing the padded key again, which saves
    about a third of the time for the dozen short words of a chat message.
    """
    keyed = hmac.new(key, digestmod="sha256")

    def mac(message: bytes) -> bytes:
        state = keyed.copy()
        state.update(message)
        return state.digest()

    return mac
