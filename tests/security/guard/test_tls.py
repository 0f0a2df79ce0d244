"""HTTPS by default: TLS 1.2/1.3 only, strong suites, no plain HTTP, certificate reload."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import shutil
import socket
import ssl
import warnings
from pathlib import Path

import httpx
import pytest

from bastion.core.settings import TransportSettings
from bastion.security.crypto.certificates import ensure_self_signed
from bastion.security.guard.tls import CertificateReloader, server_context
from tests.security.guard.conftest import trust
from tests.support.server import ServerThread, free_port


def handshake(port: int, context: ssl.SSLContext) -> tuple[str | None, str | None]:
    """Connect, finish the TLS handshake, and return (version, cipher name)."""
    with (
        socket.create_connection(("127.0.0.1", port), timeout=5) as raw,
        context.wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        cipher = tls.cipher()
        return tls.version(), cipher[0] if cipher else None


def client(server: ServerThread, version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    """A client trusting the server's certificate, optionally pinned to one TLS version."""
    assert server.tls is not None
    context = trust(server.tls.certificate.cert_file)
    if version is not None:
        context.minimum_version = context.maximum_version = version
    return context


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_tls_12_and_13_are_served(tls_server: ServerThread, version: ssl.TLSVersion) -> None:
    """Both modern versions complete a handshake with an AEAD suite and forward secrecy."""
    negotiated, cipher = handshake(tls_server.port, client(tls_server, version))
    assert negotiated == version.name.replace("_", ".")
    assert cipher is not None
    assert "GCM" in cipher or "CHACHA20" in cipher
    if version is ssl.TLSVersion.TLSv1_2:
        assert cipher.startswith("ECDHE-")


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1, ssl.TLSVersion.TLSv1_1])
def test_old_tls_versions_are_refused(tls_server: ServerThread, version: ssl.TLSVersion) -> None:
    """TLS 1.0 and 1.1 never complete a handshake."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.set_ciphers("ALL:@SECLEVEL=0")
    with warnings.catch_warnings():
        # Python deprecates the old versions; making such a client is the point here.
        warnings.simplefilter("ignore", DeprecationWarning)
        context.minimum_version = context.maximum_version = version
    with pytest.raises((ssl.SSLError, ConnectionError)):
        handshake(tls_server.port, context)


def test_weak_tls12_suites_are_refused(tls_server: ServerThread) -> None:
    """A client offering only CBC, RSA key exchange or 3DES suites finds no common suite."""
    context = client(tls_server, ssl.TLSVersion.TLSv1_2)
    context.set_ciphers("AES128-SHA:AES256-SHA:ECDHE-RSA-AES128-SHA:DES-CBC3-SHA:@SECLEVEL=0")
    with pytest.raises(ssl.SSLError):
        handshake(tls_server.port, context)


def test_no_compression(tls_server: ServerThread) -> None:
    """TLS compression (CRIME) is off."""
    with (
        socket.create_connection(("127.0.0.1", tls_server.port), timeout=5) as raw,
        client(tls_server).wrap_socket(raw, server_hostname="localhost") as tls,
    ):
        assert tls.compression() is None


async def test_plain_http_is_not_served(tls_server: ServerThread) -> None:
    """The HTTPS port does not answer plain HTTP, and nothing else listens for it."""
    with pytest.raises(httpx.TransportError):
        async with httpx.AsyncClient() as plain:
            await plain.get(f"http://127.0.0.1:{tls_server.port}/healthz", timeout=3)


async def test_https_responses_carry_hsts(https: httpx.AsyncClient) -> None:
    """HSTS with a year's max-age and includeSubDomains, over HTTPS."""
    response = await https.get("/healthz")
    assert response.status_code == 200
    assert response.headers["strict-transport-security"] == "max-age=31536000; includeSubDomains"


def test_self_signed_certificate_is_kept_and_private(tmp_path: Path) -> None:
    """The first start makes the certificate (key 0600); the next start reuses it."""
    now = dt.datetime.now(dt.UTC)
    first = ensure_self_signed(tmp_path / "tls", now=now)
    again = ensure_self_signed(tmp_path / "tls", now=now)
    assert first.created
    assert not again.created
    assert again.fingerprint == first.fingerprint
    assert first.key_file.stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "tls").stat().st_mode & 0o777 == 0o700
    assert dt.timedelta(days=364) < first.expires - now <= dt.timedelta(days=366)


def test_expired_self_signed_certificate_is_replaced(tmp_path: Path) -> None:
    """A certificate within a day of expiry is replaced at start."""
    now = dt.datetime.now(dt.UTC)
    first = ensure_self_signed(tmp_path, now=now)
    later = ensure_self_signed(tmp_path, now=now + dt.timedelta(days=365))
    assert later.created
    assert later.fingerprint != first.fingerprint


async def test_operator_certificate_is_reloaded_when_it_changes(tmp_path: Path) -> None:
    """Replacing the certificate files changes what new connections are served."""
    now = dt.datetime.now(dt.UTC)
    old = ensure_self_signed(tmp_path / "old", now=now)
    new = ensure_self_signed(tmp_path / "new", now=now)
    live_cert, live_key = tmp_path / "live.crt", tmp_path / "live.key"
    shutil.copy(old.cert_file, live_cert)
    shutil.copy(old.key_file, live_key)
    context = server_context(TransportSettings(), live_cert, live_key)
    reloader = CertificateReloader(context, live_cert, live_key, interval=60)
    port = free_port()
    listener = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", port, ssl=context)
    try:
        assert await served_fingerprint(port) == old.fingerprint
        assert reloader.check() is False
        shutil.copy(new.key_file, live_key)
        shutil.copy(new.cert_file, live_cert)
        assert reloader.check() is True
        assert await served_fingerprint(port) == new.fingerprint
        live_key.write_text("not a key")
        assert reloader.check() is False  # a broken pair is ignored, the last good one stays
        assert await served_fingerprint(port) == new.fingerprint
    finally:
        listener.close()
        await listener.wait_closed()


async def served_fingerprint(port: int) -> str:
    """The SHA-256 fingerprint of the certificate a TLS server presents."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    _reader, writer = await asyncio.open_connection("127.0.0.1", port, ssl=context)
    tls = writer.get_extra_info("ssl_object")
    der = tls.getpeercert(binary_form=True)
    writer.close()
    return hashlib.sha256(der).digest().hex(":").upper()
