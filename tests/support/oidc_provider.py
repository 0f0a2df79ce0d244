"""A real external OpenID Provider for the tests: ``oidc-provider`` run by Node on loopback.

``tests/support/idp/`` holds the provider script and its locked npm dependencies;
``node_modules`` is installed with ``npm ci`` the first time it is missing. Logins run
the authorization-code flow with PKCE over plain HTTP: the provider's interaction
route signs in the account named by ``login_hint``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit

import httpx
from joserfc.jwk import ECKey

from tests.support.server import free_port

IDP_DIR = Path(__file__).resolve().parent / "idp"
REDIRECT_URI = "http://127.0.0.1:9/callback"
CLIENT_SECRET = "test-client-secret-0123456789abcdef"
OTHER_AUDIENCE = "https://other-api.example"


def ensure_node_modules() -> None:
    """Install the provider's locked dependencies if they are not there yet."""
    if (IDP_DIR / "node_modules" / "oidc-provider").is_dir():
        return
    npm = shutil.which("npm")
    assert npm is not None, "npm is not installed: apt-get install -y nodejs npm (README, Set up)"
    subprocess.run(  # noqa: S603 - npm from PATH with fixed arguments
        [npm, "ci", "--no-audit", "--no-fund"], cwd=IDP_DIR, check=True, timeout=300
    )


def new_key() -> ECKey:
    """A fresh ES256 signing key with a thumbprint kid."""
    return ECKey.generate_key(
        "P-256", parameters={"alg": "ES256", "use": "sig"}, auto_kid=True, private=True
    )


@dataclass(slots=True)
class Tokens:
    """What the provider's token endpoint answered."""

    access_token: str
    id_token: str


@dataclass(slots=True)
class OpenIDProvider:
    """One provider process; ``restart`` keeps its issuer (same port) with new keys."""

    workdir: Path
    audience: str
    accounts: dict[str, dict[str, Any]]
    port: int = field(default_factory=free_port)
    keys: list[ECKey] = field(default_factory=lambda: [new_key()])
    process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        """The provider's issuer identifier (and base URL)."""
        return f"http://127.0.0.1:{self.port}"

    def _config(self) -> dict[str, Any]:
        client = {
            "client_secret": CLIENT_SECRET,
            "redirect_uris": [REDIRECT_URI],
            "grant_types": ["authorization_code", "client_credentials"],
            "response_types": ["code"],
            "id_token_signed_response_alg": "ES256",
        }
        return {
            "port": self.port,
            "keys": [key.as_dict(private=True) for key in self.keys],
            "audiences": [self.audience, OTHER_AUDIENCE],
            "accounts": self.accounts,
            "clients": [{"client_id": "web", **client}, {"client_id": "short", **client}],
            "short_lived_clients": ["short"],
        }

    def start(self) -> None:
        """Start the provider and wait until its discovery document answers."""
        ensure_node_modules()
        config = self.workdir / f"provider-{self.port}.json"
        config.write_text(json.dumps(self._config()), encoding="utf-8")
        node = shutil.which("node")
        assert node is not None, "node is not installed: apt-get install -y nodejs (README, Set up)"
        self.process = subprocess.Popen(  # noqa: S603 - our provider script, fixed arguments
            [node, str(IDP_DIR / "provider.mjs"), str(config)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.issuer}/.well-known/openid-configuration", timeout=1)
            except httpx.TransportError:
                time.sleep(0.05)
                continue
            return
        raise RuntimeError("the OpenID Provider did not start")

    def stop(self) -> None:
        """Stop the provider process."""
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=10)
            self.process = None

    def rotate(self) -> ECKey:
        """Rotate: a new key signs from now on, the old one stays published."""
        key = new_key()
        self.keys.insert(0, key)
        self.stop()
        self.start()
        return key

    async def login(
        self, account: str, *, client_id: str = "web", resource: str | None = None
    ) -> Tokens:
        """Run authorization code + PKCE for ``account``; return its access and ID tokens."""
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
        resource = resource or self.audience
        query = {
            "client_id": client_id,
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "openid profile chat",
            "resource": resource,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "login_hint": account,
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
        }
        async with httpx.AsyncClient(base_url=self.issuer, timeout=10) as client:
            code = await _follow_to_callback(client, f"{self.issuer}/auth?{urlencode(query)}")
            response = await client.post(
                "/token",
                auth=(client_id, CLIENT_SECRET),
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": REDIRECT_URI,
                    "code_verifier": verifier,
                    "resource": resource,
                },
            )
        assert response.status_code == 200, response.text
        body = response.json()
        return Tokens(body["access_token"], body["id_token"])


async def _follow_to_callback(client: httpx.AsyncClient, url: str) -> str:
    """Follow the provider's redirects until the callback; return the code it carries."""
    for _ in range(10):
        response = await client.get(url)
        location = response.headers.get("location")
        assert location is not None, response.text
        url = urljoin(url, location)
        if url.startswith(REDIRECT_URI):
            params = dict(parse_qsl(urlsplit(url).query))
            assert "code" in params, params
            return params["code"]
    raise AssertionError("the provider never redirected to the callback")
