"""Settings: environment and TOML sources, production refusals, redaction, immutability."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from bastion.core.settings import (
    CONFIG_FILE_ENV,
    ConfigFileError,
    Environment,
    InsecureProduction,
    Settings,
    load_settings,
    redact_url,
)
from tests.support.settings import (
    INSECURE,
    PASSPHRASE,
    mutable_containers,
    nested,
    production,
    secret_fields,
    url_fields,
)

DB_PASSWORD = "s3cret-db-pw"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ``BASTION_*`` variable from the caller's shell leaks into these tests."""
    for name in list(os.environ):
        if name.startswith("BASTION_"):
            monkeypatch.delenv(name)


def test_defaults_are_local_and_safe() -> None:
    """Out of the box: development, loopback, debug off, issuer and audience = public URL."""
    settings = Settings()
    assert settings.environment is Environment.DEVELOPMENT
    assert settings.debug is False
    assert settings.server.host == "127.0.0.1"
    assert settings.issuer == settings.audience == "https://127.0.0.1:8000"
    assert settings.transport.tls is True
    assert settings.database_url == f"sqlite+aiosqlite:///{Path('var') / 'bastion.db'}"
    assert settings.database.echo is False


def test_environment_variables_with_prefix_and_nesting(monkeypatch: pytest.MonkeyPatch) -> None:
    """``BASTION_`` prefixed variables set fields; ``__`` reaches into sections."""
    monkeypatch.setenv("BASTION_DEBUG", "true")
    monkeypatch.setenv("BASTION_SERVER__PORT", "9123")
    monkeypatch.setenv("BASTION_SERVER__PUBLIC_URL", "https://chat.example.com/")
    monkeypatch.setenv("BASTION_AUTH__LEEWAY", "5")
    monkeypatch.setenv("BASTION_DATABASE__URL", "postgresql+asyncpg://bastion@db/bastion")
    settings = Settings()
    assert settings.debug is True
    assert settings.server.port == 9123
    assert settings.server.host == "127.0.0.1"
    assert settings.auth.leeway == 5
    assert settings.issuer == "https://chat.example.com"
    assert settings.database_url == "postgresql+asyncpg://bastion@db/bastion"


@pytest.mark.parametrize(
    ("server", "tls", "expected"),
    [
        ({"port": 18444}, True, "https://127.0.0.1:18444"),
        ({"port": 18444}, False, "http://127.0.0.1:18444"),
        ({"host": "0.0.0.0", "port": 9000}, True, "https://127.0.0.1:9000"),  # noqa: S104
        ({"host": "::", "port": 9000}, True, "https://[::1]:9000"),
        ({"host": "::1", "port": 9000}, True, "https://[::1]:9000"),
        ({"host": "chat.internal", "port": 443}, True, "https://chat.internal"),
        ({"host": "localhost", "port": 80}, False, "http://localhost"),
    ],
)
def test_an_unset_public_url_follows_where_the_server_listens(
    server: dict[str, Any], tls: bool, expected: str
) -> None:
    """RFC 8414 §3.3: without ``server.public_url`` the issuer is where this server is
    reached (its port and scheme), not a fixed :8000."""
    settings = Settings(server=server, transport={"tls": tls})
    assert settings.public_url == settings.issuer == settings.audience == expected
    assert settings.redacted()["server"]["public_url"] == expected


def test_a_configured_public_url_wins_over_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit public URL (a proxy's, say) is used as given, less a trailing slash."""
    monkeypatch.setenv("BASTION_SERVER__PUBLIC_URL", "https://chat.example.com/")
    settings = Settings(server={"port": 18444})
    assert settings.public_url == settings.issuer == "https://chat.example.com"


@pytest.mark.parametrize("transport", [{"tls": False, "behind_tls_proxy": True}, {}])
def test_production_refuses_a_derived_issuer(transport: dict[str, Any]) -> None:
    """With no public URL the derived issuer names this process's own bind address (and
    http:// behind a TLS proxy), which production refuses: the public URL must be set."""
    config = production(transport=transport)
    config["server"] = {"host": "::"}
    with pytest.raises(ValidationError, match=r"neither server\.public_url nor auth\.issuer"):
        Settings(**config)
    config["server"] = {"public_url": "https://chat.example.com"}
    assert Settings(**config).issuer == "https://chat.example.com"


def test_unprefixed_variables_are_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only ``BASTION_*`` variables count: ``DEBUG`` or ``SERVER__PORT`` change nothing."""
    monkeypatch.setenv("DEBUG", "true")
    monkeypatch.setenv("SERVER__PORT", "9123")
    settings = Settings()
    assert settings.debug is False
    assert settings.server.port == 8000


def test_invalid_environment_values_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Out-of-range values and typos in section keys fail loudly, naming the field."""
    monkeypatch.setenv("BASTION_SERVER__PORT", "70000")
    with pytest.raises(ValidationError, match=r"server\.port"):
        Settings()
    monkeypatch.delenv("BASTION_SERVER__PORT")
    monkeypatch.setenv("BASTION_SERVER__PROT", "9000")
    with pytest.raises(ValidationError, match=r"server\.prot"):
        Settings()


def test_toml_file_via_bastion_config_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``BASTION_CONFIG_FILE`` names a TOML file whose sections fill the settings."""
    config = tmp_path / "bastion.toml"
    config.write_text(
        'debug = false\n[server]\nport = 9001\ndata_dir = "/srv/bastion"\n'
        '[auth]\nsigning_alg = "Ed25519"\nuser_token_ttl = 600\n'
        "[limits]\nmessage_max_chars = 500\n",
        encoding="utf-8",
    )
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    settings = Settings()
    assert settings.server.port == 9001
    assert settings.server.data_dir == Path("/srv/bastion")
    assert settings.auth.signing_alg == "Ed25519"
    assert settings.auth.user_token_ttl == 600
    assert settings.limits.message_max_chars == 500


def test_priority_arguments_then_environment_then_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Constructor arguments beat the environment, which beats the TOML file; sections merge."""
    config = tmp_path / "bastion.toml"
    config.write_text(
        '[server]\nport = 9001\nhost = "0.0.0.0"\nmax_body_bytes = 4096\n', encoding="utf-8"
    )
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    monkeypatch.setenv("BASTION_SERVER__PORT", "9002")
    monkeypatch.setenv("BASTION_SERVER__HOST", "10.0.0.1")
    settings = load_settings(server={"port": 9003})
    assert settings.server.port == 9003
    assert settings.server.host == "10.0.0.1"
    assert settings.server.max_body_bytes == 4096


def test_a_typo_in_the_toml_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Unknown keys in the file are an error, not silently ignored."""
    config = tmp_path / "bastion.toml"
    config.write_text("[auth]\nleway = 5\n", encoding="utf-8")
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    with pytest.raises(ValidationError, match=r"auth\.leway"):
        Settings()


def test_a_missing_config_file_is_refused(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A config file that is not there is an error, not a silent fall-back to defaults."""
    monkeypatch.setenv(CONFIG_FILE_ENV, str(tmp_path / "nonexistent.toml"))
    with pytest.raises(ConfigFileError, match=r"nonexistent\.toml, which is not a file"):
        Settings()


def test_a_malformed_config_file_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A file that is not TOML is refused with where it breaks, as a ConfigFileError."""
    config = tmp_path / "bastion.toml"
    config.write_text("[server\nport = 9001\n", encoding="utf-8")
    monkeypatch.setenv(CONFIG_FILE_ENV, str(config))
    with pytest.raises(ConfigFileError, match=r"is not valid TOML: .*line 1"):
        Settings()


def test_a_secure_production_configuration_is_accepted() -> None:
    """Production with a passphrase, an https issuer and default argon2 cost starts."""
    settings = Settings(**production())
    assert settings.environment is Environment.PRODUCTION
    assert settings.insecure_findings() == []


@pytest.mark.parametrize(("changes", "named"), INSECURE)
def test_production_refuses_each_insecure_setting(changes: dict[str, Any], named: str) -> None:
    """Each insecure setting alone stops production start-up with a message naming it."""
    with pytest.raises(ValidationError) as caught:
        Settings(**production(**changes))
    message = str(caught.value)
    assert "refusing to run in production" in message
    assert named in message
    assert PASSPHRASE not in message
    (error,) = caught.value.errors()
    assert isinstance(error["ctx"]["error"], InsecureProduction)
    assert len(error["ctx"]["error"].findings) == 1


def test_every_secret_setting_is_found() -> None:
    """The walk that the secret tests use finds the secrets production must check."""
    assert {
        "auth.keys_passphrase",
        "encryption.master_passphrase",
        "encryption.master_key",
        "encryption.vault.token",
        "audit.hmac_key",
        "resource_server.dpop_nonce_secret",
        "monitor.webhook_secret",
        "monitor.smtp_password",
    } <= set(secret_fields())


@pytest.mark.parametrize("weak", ["change-me", "changeme", "CHANGEME", "secret", "password", "x"])
@pytest.mark.parametrize("secret", secret_fields())
def test_production_refuses_a_weak_value_in_every_secret(secret: str, weak: str) -> None:
    """Every secret setting, not only the signing-key passphrase, refuses a placeholder or
    a value shorter than 16 characters in production, naming the setting."""
    with pytest.raises(ValidationError) as caught:
        Settings(**production(**nested(secret, weak)))
    message = str(caught.value)
    assert "refusing to run in production" in message
    assert f"{secret} is a placeholder" in message or f"{secret} is shorter than 16" in message


@pytest.mark.parametrize("secret", secret_fields())
def test_production_accepts_a_strong_value_in_every_secret(secret: str) -> None:
    """A long random value passes, so the check refuses weak secrets only."""
    settings = Settings(**production(**nested(secret, "Zq8-wK2r-Lm5p-Xv7t-Nb4y")))
    assert settings.insecure_findings() == []


def test_production_names_every_problem_at_once() -> None:
    """Debug, no passphrase and an http issuer are all reported together."""
    with pytest.raises(ValidationError) as caught:
        Settings(
            environment="production",
            debug=True,
            server={"public_url": "http://127.0.0.1:8000"},
            transport={"tls": False},
        )
    message = str(caught.value)
    assert "debug" in message
    assert "keys_passphrase" in message
    assert "'http://127.0.0.1:8000' is not an https:// URL" in message
    assert "plain HTTP" in message


def test_production_refusal_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """``BASTION_ENVIRONMENT=production`` alone is refused with the defaults."""
    monkeypatch.setenv("BASTION_ENVIRONMENT", "production")
    with pytest.raises(ValidationError, match="refusing to run in production"):
        Settings()


def test_development_reports_findings_without_refusing() -> None:
    """Outside production the same findings are available but do not stop start-up."""
    settings = Settings(debug=True)
    findings = settings.insecure_findings()
    assert any("debug" in finding for finding in findings)
    assert any("keys_passphrase" in finding for finding in findings)


def test_redacted_hides_the_database_password_and_the_passphrase() -> None:
    """``redacted()`` is safe to print: no DB password, no key passphrase."""
    settings = Settings(
        **production(
            database={"url": f"postgresql+asyncpg://bastion:{DB_PASSWORD}@db.internal:5432/chat"}
        )
    )
    data = settings.redacted()
    dumped = json.dumps(data)
    assert DB_PASSWORD not in dumped
    assert PASSPHRASE not in dumped
    assert (
        data["database"]["url"] == "postgresql+asyncpg://bastion:**********@db.internal:5432/chat"
    )
    assert data["auth"]["keys_passphrase"] == "**********"
    assert data["auth"]["issuer"] == "https://chat.example.com"
    assert data["server"]["port"] == 8000


def test_redacted_hides_every_secret_and_url_credential() -> None:
    """Every secret setting and every URL setting's password, query values and fragment
    are hidden; the rest of each URL (scheme, user, host, path) stays readable."""
    config: dict[str, Any] = {"transport": {"tls": True}}
    hidden = []
    for number, name in enumerate(secret_fields()):
        value = f"SECRET{number:02d}-0123456789abcdef"
        hidden.append(value)
        merge(config, nested(name, value))
    for number, name in enumerate(url_fields()):
        scheme = "redis" if name.endswith("dpop_replay_url") else "https"
        userinfo, query = f"PASS{number:02d}", f"password=QUERY{number:02d}&token=TOKEN{number:02d}"
        hidden += [userinfo, f"QUERY{number:02d}", f"TOKEN{number:02d}"]
        merge(config, nested(name, f"{scheme}://user:{userinfo}@h.example:1/p?{query}#FRAG"))
    dumped = json.dumps(Settings(**config).redacted())
    assert [value for value in hidden if value in dumped] == []
    assert "FRAG" not in dumped
    assert "https://user:**********@h.example:1/p?password=**********" in dumped


def merge(config: dict[str, Any], changes: dict[str, Any]) -> None:
    """Merge nested sections into ``config`` in place."""
    for key, value in changes.items():
        if isinstance(value, dict):
            merge(config.setdefault(key, {}), value)
        else:
            config[key] = value


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:REDISPASS1@127.0.0.1:6379/0", "redis://:**********@127.0.0.1:6379/0"),
        ("redis://user:DPOPPASS@cache:6380/1", "redis://user:**********@cache:6380/1"),
        (
            "postgresql+asyncpg://u:PGPASSWORD1@h/db?password=QPASS&sslmode=verify-full",
            "postgresql+asyncpg://u:**********@h/db?password=**********&sslmode=verify-full",
        ),
        ("https://hooks.example/x?token=WEBHOOKTOKEN", "https://hooks.example/x?token=**********"),
        ("sqlite+aiosqlite:///var/bastion.db", "sqlite+aiosqlite:///var/bastion.db"),
        ("postgresql+asyncpg://bastion@db/chat", "postgresql+asyncpg://bastion@db/chat"),
        ("memory://", "memory://"),
    ],
)
def test_redact_url(url: str, shown: str) -> None:
    """Passwords and query values go; connection options, hosts and paths stay."""
    assert redact_url(url) == shown


def test_redacted_hides_a_webhook_path() -> None:
    """A chat-ops webhook's secret is its path: only its scheme and host are shown."""
    url = "https://hooks.slack.com/services/T0001/B0002/XXXXSECRETXXXX"
    monitor = {"webhook_url": url, "webhook_secret": "a-long-enough-signing-secret"}
    shown = Settings(monitor=monitor).redacted()["monitor"]["webhook_url"]
    assert shown == "https://hooks.slack.com/**********"


def test_redacted_leaves_a_password_free_url_alone() -> None:
    """A URL without a password is shown as is; the default SQLite URL is resolved."""
    assert (
        Settings(database={"url": "postgresql+asyncpg://bastion@db/chat"}).redacted()["database"][
            "url"
        ]
        == "postgresql+asyncpg://bastion@db/chat"
    )
    assert Settings().redacted()["database"]["url"].startswith("sqlite+aiosqlite:///")


def test_secret_values_do_not_show_in_repr() -> None:
    """The passphrase never appears in ``repr`` or ``str`` of the settings."""
    settings = Settings(**production())
    assert PASSPHRASE not in repr(settings)
    assert PASSPHRASE not in str(settings)
    assert settings.auth.keys_passphrase is not None
    assert settings.auth.keys_passphrase.get_secret_value() == PASSPHRASE


def test_no_setting_is_a_mutable_container() -> None:
    """No field anywhere in the settings tree is a list, dict or set: "frozen" is deep."""
    assert mutable_containers(Settings) == []


def _containers(value: Any, path: str) -> list[tuple[str, Any]]:
    """Every container value in a built settings tree, with its path."""
    if isinstance(value, BaseModel):
        found = []
        for name in type(value).model_fields:
            found += _containers(getattr(value, name), f"{path}.{name}")
        return found
    if isinstance(value, (str, bytes, SecretStr)) or not hasattr(value, "__iter__"):
        return []
    found = [(path, value)]
    for index, item in enumerate(value.values() if isinstance(value, Mapping) else value):
        found += _containers(item, f"{path}[{index}]")
    return found


def test_every_container_in_built_settings_is_immutable() -> None:
    """Lists and maps, down to each external issuer's role map, cannot be changed: the
    asymmetric-only DPoP rule cannot be got round by appending HS256 after start-up."""
    settings = Settings(
        resource_server={
            "dpop_required_clients": ["cli_x"],
            "external_issuers": [
                {
                    "issuer": "https://idp.example.com",
                    "app_id": "app_x",
                    "client_ids": ["web"],
                    "role_map": {"chat-users": "member"},
                }
            ],
        }
    )
    containers = _containers(settings, "settings")
    assert len(containers) > 10
    mutable = [path for path, value in containers if isinstance(value, (list, dict, set))]
    assert mutable == []
    assert all(isinstance(v, (tuple, frozenset, MappingProxyType)) for _, v in containers)
    with pytest.raises(AttributeError):
        settings.resource_server.dpop_algorithms.append("HS256")  # type: ignore[attr-defined]
    issuer = settings.resource_server.external_issuers[0]
    with pytest.raises(TypeError):
        issuer.role_map["admins"] = "member"  # type: ignore[index]
    assert settings.resource_server.dpop_algorithms == ("ES256", "Ed25519", "RS256", "PS256")


def test_settings_are_frozen() -> None:
    """Neither the settings nor their sections can be changed after start-up."""
    settings = Settings()
    with pytest.raises(ValidationError):
        settings.debug = True  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.server.port = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        settings.auth.leeway = 300  # type: ignore[misc]
    assert settings.debug is False


def test_unknown_arguments_are_refused() -> None:
    """A misspelt setting is an error, at the top level and in a section."""
    with pytest.raises(ValidationError):
        Settings(debugg=True)  # type: ignore[call-arg]
    with pytest.raises(ValidationError):
        Settings(server={"prot": 1})


def test_page_size_default_must_fit_the_maximum() -> None:
    """Inconsistent limits are refused at start-up."""
    with pytest.raises(ValidationError, match="page_size_default"):
        Settings(limits={"page_size_default": 500, "page_size_max": 100})


@pytest.mark.parametrize(
    ("resource_server", "message"),
    [
        ({"allow_http_loopback": True}, "allow_http_loopback"),
        (
            {"external_issuers": [{"issuer": "http://idp.example.com", "app_id": "app_x"}]},
            "is not an https:// URL",
        ),
    ],
)
def test_production_refuses_insecure_external_issuers(
    resource_server: dict[str, Any], message: str
) -> None:
    """Plain-http providers, or the test-only loopback switch, never run in production."""
    with pytest.raises(ValidationError, match=message):
        Settings(**production(resource_server=resource_server))


def test_external_issuers_parse_from_json_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """BASTION_RESOURCE_SERVER__EXTERNAL_ISSUERS holds the list as JSON."""
    monkeypatch.setenv(
        "BASTION_RESOURCE_SERVER__EXTERNAL_ISSUERS",
        '[{"issuer": "https://accounts.google.com", "app_id": "app_x", "client_ids": ["c"]}]',
    )
    issuer = Settings().resource_server.external_issuers[0]
    assert issuer.issuer == "https://accounts.google.com"
    assert issuer.client_ids == ("c",)
    assert issuer.algorithms == ("RS256", "ES256")


@pytest.mark.parametrize(
    ("url", "transport"),
    [
        ("rediss://cache.internal:6380/0", {}),
        ("redis://127.0.0.1:6379/0", {}),
        ("redis://localhost/0", {}),
        ("redis://[::1]:6379/0", {}),
        ("redis://user:pw@10.0.0.5:6379/0", {"redis_allow_plain": True}),
    ],
)
def test_production_accepts_redis_over_tls_loopback_or_allowed(
    url: str, transport: dict[str, Any]
) -> None:
    """TLS, a loopback host or an explicit allowance make a Redis store acceptable."""
    config = production(ratelimit={"storage_url": url}, transport=transport)
    assert Settings(**config).insecure_findings() == []


@pytest.mark.parametrize(
    ("transport", "ratelimit", "message"),
    [
        ({"mtls": "tls"}, {}, "client_ca_file"),
        ({"client_ca_file": "ca.pem"}, {}, "only with transport.mtls = tls"),
        ({"mtls": "proxy"}, {}, "behind_tls_proxy"),
        ({"redis_ca_file": "ca.pem"}, {"storage_url": "redis://127.0.0.1/0"}, "rediss://"),
        ({"redis_cert_file": "c.pem"}, {"storage_url": "rediss://h/0"}, "go together"),
    ],
)
def test_incoherent_tls_settings_are_refused(
    transport: dict[str, Any], ratelimit: dict[str, Any], message: str
) -> None:
    """Mutual TLS and Redis TLS settings that cannot work are refused at start."""
    with pytest.raises(ValidationError, match=message):
        Settings(transport=transport, ratelimit=ratelimit)
