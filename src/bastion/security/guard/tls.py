"""The server's TLS context: TLS 1.2/1.3 only, Mozilla "intermediate" ciphers, reloadable.

https://wiki.mozilla.org/Security/Server_Side_TLS (intermediate configuration). Python's
``ssl`` builds the context; no compression, no renegotiation, server cipher order.
The certificate and key are re-read when their files change, so a renewed certificate
is served to new connections without a restart.
"""

from __future__ import annotations

import ssl
import threading
from pathlib import Path

from bastion.core.settings import TransportSettings
from bastion.observe.logging import get_logger

log = get_logger("bastion.tls")

# Mozilla intermediate TLS 1.2 suites with forward secrecy and AEAD; TLS 1.3 suites
# are all acceptable and are not configured through this list.
INTERMEDIATE_CIPHERS = ":".join(
    (
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-CHACHA20-POLY1305",
    )
)


def server_context(transport: TransportSettings, cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server-side context with the certificate loaded and weak options off."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = (
        ssl.TLSVersion.TLSv1_3 if transport.tls_min_version == "1.3" else ssl.TLSVersion.TLSv1_2
    )
    context.maximum_version = ssl.TLSVersion.TLSv1_3
    context.set_ciphers(transport.tls_ciphers or INTERMEDIATE_CIPHERS)
    context.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    context.options |= ssl.OP_CIPHER_SERVER_PREFERENCE | ssl.OP_SINGLE_ECDH_USE
    # Python 3.11 cannot list several groups; P-256 alone is within Mozilla's
    # intermediate set (X25519, P-256, P-384), which X448 and P-521 are not.
    context.set_ecdh_curve("prime256v1")
    if transport.mtls == "tls" and transport.client_ca_file is not None:
        # Mutual TLS is optional per connection: browsers and apps connect without a
        # certificate; backends that present one are verified against this CA.
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(cafile=str(transport.client_ca_file))
    context.load_cert_chain(str(cert_file), str(key_file))
    return context


class CertificateReloader:
    """Polls the certificate and key files and loads them into the live context on change."""

    def __init__(
        self, context: ssl.SSLContext, cert_file: Path, key_file: Path, interval: float
    ) -> None:
        self.context = context
        self.cert_file = cert_file
        self.key_file = key_file
        self.interval = interval
        self.reloads = 0
        self._seen = self._stamp()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="bastion-cert-reload", daemon=True)

    def _stamp(self) -> tuple[int, int]:
        return (self.cert_file.stat().st_mtime_ns, self.key_file.stat().st_mtime_ns)

    def check(self) -> bool:
        """Reload if either file changed since the last look; tell whether it did."""
        try:
            stamp = self._stamp()
            if stamp == self._seen:
                return False
            self.context.load_cert_chain(str(self.cert_file), str(self.key_file))
        except (OSError, ssl.SSLError) as exc:
            # A half-written pair (new cert, old key) fails to load: keep serving the old
            # one and try again on the next tick.
            log.warning("tls.reload_failed", error=type(exc).__name__, file=str(self.cert_file))
            return False
        self._seen = stamp
        self.reloads += 1
        log.info("tls.reloaded", file=str(self.cert_file))
        return True

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.check()

    def start(self) -> None:
        """Start polling in a background thread."""
        self._thread.start()

    def stop(self) -> None:
        """Stop polling."""
        self._stop.set()
