"""A stand-in HashiCorp Vault Transit server on loopback, for the Vault key source's tests.

No Vault server can run here, so this one answers Transit's HTTP API with the response
shapes and error texts recorded in ``vault_transit.json`` (from Vault's API
documentation and source), over real HTTP, to the real ``hvac`` client. It checks what
Vault checks (token, path, method, body fields, derivation context, key versions,
``min_decryption_version``) and records every request that is not shaped as Vault's
documentation says in ``violations``, which the tests require to stay empty.

Its cryptography is its own (AES-256-GCM under HMAC-derived keys), not Vault's: only
the API contract is reproduced, and a wrong context fails as it does in Vault.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import hashlib
import hmac
import json
import os
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

RECORDED: dict[str, Any] = json.loads(
    (Path(__file__).resolve().parent / "vault_transit.json").read_text("utf-8")
)
_ROUTES: list[tuple[str, re.Pattern[str], str, frozenset[str], frozenset[str]]] = [
    # method, path, operation, required body fields, allowed body fields
    ("GET", re.compile(r"keys/(?P<name>[\w-]+)"), "read", frozenset(), frozenset()),
    (
        "POST",
        re.compile(r"encrypt/(?P<name>[\w-]+)"),
        "encrypt",
        frozenset({"plaintext", "context"}),
        frozenset({"plaintext", "context", "key_version", "associated_data"}),
    ),
    (
        "POST",
        re.compile(r"decrypt/(?P<name>[\w-]+)"),
        "decrypt",
        frozenset({"ciphertext", "context"}),
        frozenset({"ciphertext", "context", "associated_data"}),
    ),
    (
        "POST",
        re.compile(r"datakey/plaintext/(?P<name>[\w-]+)"),
        "datakey",
        frozenset({"context"}),
        frozenset({"context", "bits"}),
    ),
    ("POST", re.compile(r"keys/(?P<name>[\w-]+)/rotate"), "rotate", frozenset(), frozenset()),
    (
        "POST",
        re.compile(r"keys/(?P<name>[\w-]+)/config"),
        "config",
        frozenset(),
        frozenset({"min_decryption_version", "min_encryption_version", "deletion_allowed"}),
    ),
    (
        "POST",
        re.compile(r"keys/(?P<name>[\w-]+)/trim"),
        "trim",
        frozenset({"min_available_version"}),
        frozenset({"min_available_version"}),
    ),
]


class VaultError(Exception):
    """An answer Vault gives as ``{"errors": [...]}``, by its recorded name."""

    def __init__(self, name: str) -> None:
        super().__init__(name)
        status, text = RECORDED["errors"][name]
        self.status: int = status
        self.errors: list[str] = [text] if text else []


@dataclass
class TransitKey:
    """A derived aes256-gcm96 Transit key: versions of root material and their times."""

    name: str
    versions: dict[int, tuple[bytes, int]] = field(default_factory=dict)
    min_decryption_version: int = 1
    min_available_version: int = 0

    @property
    def latest(self) -> int:
        """The newest version."""
        return max(self.versions)

    def add_version(self, created: int) -> None:
        """A new version with fresh material (create, rotate)."""
        self.versions[(max(self.versions) if self.versions else 0) + 1] = (os.urandom(32), created)

    def cipher(self, version: int, context: bytes) -> AESGCM:
        """The AEAD for ``version`` derived with ``context``."""
        root = self.versions[version][0]
        return AESGCM(hmac.new(root, context, hashlib.sha256).digest())


class FakeVault:
    """The Transit engine at ``mount`` with its keys, tokens and a seal switch."""

    def __init__(self, token: str, mount: str = "transit") -> None:
        self.mount = mount
        self.tokens: dict[str, frozenset[str] | None] = {token: None}
        """Token → the operations it may use (None: all), like a Vault policy."""
        self.keys: dict[str, TransitKey] = {}
        self.sealed = False
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.violations: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        """Vault's URL."""
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def create_key(self, name: str, created: int | None = None) -> TransitKey:
        """``vault write -f transit/keys/<name> derived=true``."""
        key = TransitKey(name)
        key.add_version(created if created is not None else int(time.time()))
        self.keys[name] = key
        return key

    def start(self) -> FakeVault:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving."""
        self._server.shutdown()
        self._server.server_close()

    # -- the API ----------------------------------------------------------------------
    def answer(
        self, method: str, path: str, token: str | None, body: dict[str, Any]
    ) -> tuple[int, Any]:
        """Vault's answer (status, JSON body or None) to one request."""
        if self.sealed:
            raise VaultError("sealed")
        operation, name = self._route(method, path, body)
        allowed = self.tokens.get(token or "", frozenset())
        if token not in self.tokens or (allowed is not None and operation not in allowed):
            raise VaultError("permission_denied")
        self.requests.append((operation, name, body))
        key = self.keys.get(name)
        if key is None:
            raise VaultError("not_found" if operation == "read" else "key_not_found")
        data = getattr(self, f"_{operation}")(key, body)
        if data is None:
            return 204, None
        envelope = copy.deepcopy(RECORDED["envelope"])
        envelope["request_id"] = os.urandom(16).hex()
        envelope["data"] = data
        return 200, envelope

    def _route(self, method: str, path: str, body: dict[str, Any]) -> tuple[str, str]:
        prefix = f"/v1/{self.mount}/"
        for verb, pattern, operation, required, allowed in _ROUTES:
            found = pattern.fullmatch(path[len(prefix) :]) if path.startswith(prefix) else None
            if found is None or verb != method:
                continue
            fields = set(body)
            if not required <= fields or not fields <= allowed:
                self.violations.append(f"{method} {path}: body fields {sorted(fields)}")
            return operation, found.group("name")
        self.violations.append(f"{method} {path}: not a Transit endpoint")
        raise VaultError("not_found")

    def _read(self, key: TransitKey, _body: dict[str, Any]) -> dict[str, Any]:
        data: dict[str, Any] = copy.deepcopy(RECORDED["read_key"])
        # Vault lists only the versions that may still decrypt.
        data["keys"] = {
            str(v): created
            for v, (_, created) in key.versions.items()
            if v >= key.min_decryption_version
        }
        data.update(
            name=key.name,
            latest_version=key.latest,
            min_decryption_version=key.min_decryption_version,
            min_available_version=key.min_available_version,
        )
        return data

    def _encrypt(self, key: TransitKey, body: dict[str, Any]) -> dict[str, Any]:
        plaintext = base64.b64decode(body["plaintext"], validate=True)
        return {"ciphertext": self._seal(key, plaintext, body), "key_version": key.latest}

    def _datakey(self, key: TransitKey, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("bits", 256) not in (128, 256, 512):
            self.violations.append(f"datakey bits {body.get('bits')}")
        plaintext = os.urandom(int(body.get("bits", 256)) // 8)
        return {
            "plaintext": base64.b64encode(plaintext).decode(),
            "ciphertext": self._seal(key, plaintext, body),
            "key_version": key.latest,
        }

    def _decrypt(self, key: TransitKey, body: dict[str, Any]) -> dict[str, Any]:
        context = self._context(body)
        found = re.fullmatch(r"vault:v(\d+):(.+)", str(body["ciphertext"]))
        if found is None:
            raise VaultError("unable_to_decrypt")
        version = int(found.group(1))
        if version < key.min_decryption_version or version not in key.versions:
            raise VaultError("too_old")
        raw = base64.b64decode(found.group(2))
        try:
            plaintext = key.cipher(version, context).decrypt(raw[:12], raw[12:], None)
        except InvalidTag as exc:
            raise VaultError("unable_to_decrypt") from exc
        return {"plaintext": base64.b64encode(plaintext).decode()}

    def _rotate(self, key: TransitKey, _body: dict[str, Any]) -> None:
        key.add_version(int(time.time()))

    def _config(self, key: TransitKey, body: dict[str, Any]) -> None:
        if "min_decryption_version" in body:
            key.min_decryption_version = int(body["min_decryption_version"])

    def _trim(self, key: TransitKey, body: dict[str, Any]) -> None:
        floor = int(body["min_available_version"])
        if floor > key.min_decryption_version:
            raise VaultError("trim_too_high")
        key.versions = {v: m for v, m in key.versions.items() if v >= floor}
        key.min_available_version = floor

    def _seal(self, key: TransitKey, plaintext: bytes, body: dict[str, Any]) -> str:
        nonce = os.urandom(12)
        sealed = key.cipher(key.latest, self._context(body)).encrypt(nonce, plaintext, None)
        return f"vault:v{key.latest}:{base64.b64encode(nonce + sealed).decode()}"

    @staticmethod
    def _context(body: dict[str, Any]) -> bytes:
        if not body.get("context"):
            raise VaultError("missing_context")
        return base64.b64decode(body["context"], validate=True)


@contextlib.contextmanager
def transit_vault(token: str, kek_created: int | None = None) -> Iterator[FakeVault]:
    """A running fake with the runbook's two keys; afterwards, no request broke the API."""
    vault = FakeVault(token).start()
    vault.create_key("bastion-kek", created=kek_created)
    vault.create_key("bastion-backup")
    try:
        yield vault
    finally:
        vault.stop()
    assert vault.violations == []


def _handler(vault: FakeVault) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body: dict[str, Any] = json.loads(raw) if raw else {}
            try:
                status, answer = vault.answer(
                    self.command, self.path, self.headers.get("X-Vault-Token"), body
                )
            except VaultError as exc:
                status, answer = exc.status, {"errors": exc.errors}
            payload = b"" if answer is None else json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, format: str, *args: Any) -> None:
            """Quiet: the tests read ``requests`` instead."""

    return Handler
