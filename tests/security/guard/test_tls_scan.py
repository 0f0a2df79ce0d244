"""An off-the-shelf TLS scanner (sslyze) against the running server.

sslyze pins an older ``cryptography`` than Bastion uses, so it lives in its own tools
virtualenv (``.tools/sslyze``), created here on first use; it is never installed into
the application's environment.
"""

from __future__ import annotations

import base64
import hashlib
import json
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.server import ServerThread

ROOT = Path(__file__).resolve().parents[3]
TOOLS = ROOT / ".tools" / "sslyze"
SSLYZE = "sslyze==6.3.1"
ALLOWED_TLS12 = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256",
}

pytestmark = pytest.mark.slow


def sslyze_python() -> Path:
    """The tools venv's interpreter, with sslyze installed (created once)."""
    python = TOOLS / "bin" / "python"
    if not (TOOLS / ".installed").exists():
        subprocess.run([sys.executable, "-m", "venv", str(TOOLS)], check=True)  # noqa: S603
        subprocess.run(  # noqa: S603 - a pinned package into our own tools venv
            [str(python), "-m", "pip", "install", "--quiet", SSLYZE], check=True, timeout=600
        )
        (TOOLS / ".installed").write_text(SSLYZE)
    return python


@pytest.fixture(scope="module")
def scan(tls_server: ServerThread, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """sslyze's full scan with the Mozilla intermediate compliance check and HTTP headers."""
    out = tmp_path_factory.mktemp("sslyze") / "scan.json"
    completed = subprocess.run(  # noqa: S603 - the scanner from our tools venv
        [
            str(sslyze_python()),
            "-m",
            "sslyze",
            "--mozilla_config",
            "intermediate",
            "--http_headers",
            "--json_out",
            str(out),
            f"127.0.0.1:{tls_server.port}",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    report: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    report["compliance_output"] = completed.stdout
    result: dict[str, Any] = report["server_scan_results"][0]["scan_result"]
    result["compliance_output"] = completed.stdout
    return result


@pytest.mark.parametrize(
    "version",
    [
        "ssl_2_0_cipher_suites",
        "ssl_3_0_cipher_suites",
        "tls_1_0_cipher_suites",
        "tls_1_1_cipher_suites",
    ],
)
def test_no_legacy_protocol(scan: dict[str, Any], version: str) -> None:
    """SSLv2, SSLv3, TLS 1.0 and 1.1 accept no cipher suite at all."""
    result = scan[version]["result"]
    assert result["is_tls_version_supported"] is False
    assert result["accepted_cipher_suites"] == []


def test_only_strong_suites(scan: dict[str, Any]) -> None:
    """TLS 1.2 offers only Mozilla intermediate suites; TLS 1.3 is supported."""
    tls12 = {
        a["cipher_suite"]["name"]
        for a in scan["tls_1_2_cipher_suites"]["result"]["accepted_cipher_suites"]
    }
    assert tls12
    assert tls12 <= ALLOWED_TLS12
    assert scan["tls_1_3_cipher_suites"]["result"]["is_tls_version_supported"] is True


def test_no_compression_renegotiation_or_known_flaws(scan: dict[str, Any]) -> None:
    """No compression, no client renegotiation, not vulnerable to Heartbleed/CCS/ROBOT."""
    assert scan["tls_compression"]["result"]["supports_compression"] is False
    renegotiation = scan["session_renegotiation"]["result"]
    assert renegotiation["is_vulnerable_to_client_renegotiation_dos"] is False
    assert scan["heartbleed"]["result"]["is_vulnerable_to_heartbleed"] is False
    assert scan["openssl_ccs_injection"]["result"]["is_vulnerable_to_ccs_injection"] is False
    assert scan["robot"]["result"]["robot_result"].startswith("NOT_VULNERABLE")
    assert scan["tls_fallback_scsv"]["result"]["supports_fallback_scsv"] is True


def test_mozilla_intermediate_compliance(scan: dict[str, Any]) -> None:
    """Compliant but for trusting the self-signed localhost certificate, which no store can."""
    section = scan["compliance_output"].split("COMPLIANCE AGAINST TLS CONFIGURATION", 1)[1]
    problems = [line.strip() for line in section.splitlines() if line.strip().startswith("* ")]
    assert problems == [
        "* certificate_path_validation: Certificate path validation failed for CN=localhost."
    ]


def test_the_certificate_served_is_ours(scan: dict[str, Any], tls_server: ServerThread) -> None:
    """The scanner saw the server's certificate (same SHA-256) and its chain."""
    assert tls_server.tls is not None
    pem = tls_server.tls.certificate.cert_file.read_text(encoding="ascii")
    ours = base64.b64encode(hashlib.sha256(ssl.PEM_cert_to_DER_cert(pem)).digest()).decode()
    deployment = scan["certificate_info"]["result"]["certificate_deployments"][0]
    assert deployment["received_certificate_chain"][0]["fingerprint_sha256"] == ours


def test_hsts_seen_by_the_scanner(scan: dict[str, Any]) -> None:
    """The scanner's own HTTP request got HSTS: a year, includeSubDomains."""
    hsts = scan["http_headers"]["result"]["strict_transport_security_header"]
    assert hsts == {"max_age": 31_536_000, "preload": False, "include_subdomains": True}
