"""The settings model walked generically, and production configurations for the tests.

``secret_fields()`` and ``url_fields()`` find every secret and URL-valued setting by
walking the model, so a setting added later is covered without editing a test list.
``INSECURE`` holds one production change per finding ``insecure_findings`` can report.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, SecretStr

from bastion.core.settings import Settings

PASSPHRASE = "correct horse battery staple"
SECURE_PRODUCTION: dict[str, Any] = {
    "environment": "production",
    "server": {"public_url": "https://chat.example.com"},
    "auth": {"keys_passphrase": PASSPHRASE},
    "encryption": {"master_passphrase": PASSPHRASE},
}

INSECURE: list[tuple[dict[str, Any], str]] = [
    ({"debug": True}, "debug"),
    ({"encryption": {"master_passphrase": None}}, "encryption.master_passphrase"),
    ({"transport": {"tls": False}}, "plain HTTP"),
    ({"transport": {"hsts_max_age": 86_400}}, "hsts_max_age"),
    ({"auth": {"keys_passphrase": None}}, "keys_passphrase"),
    ({"auth": {"keys_passphrase": "change-me"}}, "keys_passphrase"),
    ({"auth": {"keys_passphrase": "too-short"}}, "shorter than 16"),
    ({"server": {"public_url": "http://chat.example.com"}}, "https://"),
    ({"server": {"public_url": None}}, "neither server.public_url nor auth.issuer"),
    ({"auth": {"issuer": "http://chat.example.com"}}, "https://"),
    ({"database": {"echo": True}}, "database.echo"),
    ({"auth": {"argon2_memory_kib": 1024}}, "argon2"),
    ({"ratelimit": {"storage_url": "redis://10.0.0.5:6379/0"}}, "rediss://"),
    ({"ratelimit": {"storage_url": "redis://cache.internal/0"}}, "'cache.internal'"),
    ({"server": {"forwarded_allow_ips": "*"}}, "server.forwarded_allow_ips"),
    ({"server": {"forwarded_allow_ips": "10.0.0.1, *"}}, "server.forwarded_allow_ips"),
    ({"validation": {"outbound_allow_http": True}}, "validation.outbound_allow_http"),
    ({"validation": {"outbound_allow_networks": ["10.0.0.0/8"]}}, "outbound_allow_networks"),
    (
        {"monitor": {"webhook_url": "http://hooks.example.com/x", "webhook_secret": PASSPHRASE}},
        "monitor.webhook_url",
    ),
    ({"monitor": {"smtp_host": "smtp.example.com", "smtp_starttls": False}}, "smtp_starttls"),
    (
        {"monitor": {"siem_syslog_host": "siem.example.com", "siem_syslog_tls": False}},
        "monitor.siem_syslog_tls",
    ),
    ({"resource_server": {"allow_http_loopback": True}}, "resource_server.allow_http_loopback"),
    (
        {
            "resource_server": {
                "external_issuers": [{"issuer": "http://idp.example", "app_id": "a"}]
            }
        },
        "is not an https:// URL",
    ),
    (
        {
            "encryption": {
                "key_source": "vault",
                "vault": {"address": "http://127.0.0.1:8200", "token": PASSPHRASE},
            }
        },
        "encryption.vault.address",
    ),
]
"""One production change per finding, and a word of the message that must name it."""


def production(**sections: Any) -> dict[str, Any]:
    """A secure production configuration with ``sections`` merged in (None values too)."""
    config: dict[str, Any] = {
        key: dict(value) if isinstance(value, dict) else value
        for key, value in SECURE_PRODUCTION.items()
    }
    for key, value in sections.items():
        if isinstance(value, dict):
            config[key] = {**config.get(key, {}), **value}
        else:
            config[key] = value
    return config


def _model_of(annotation: Any) -> type[BaseModel] | None:
    """The settings section an annotation names (``X``, ``X | None``), if any."""
    candidates = typing.get_args(annotation) or (annotation,)
    for candidate in candidates:
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def leaf_fields(model: type[BaseModel] = Settings, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Every setting below the sections, as (dotted name, annotation)."""
    for name, field in model.model_fields.items():
        section = _model_of(field.annotation)
        if section is not None and typing.get_origin(field.annotation) is not tuple:
            yield from leaf_fields(section, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", field.annotation


def _mentions(annotation: Any, wanted: type) -> bool:
    if annotation is wanted:
        return True
    return any(_mentions(arg, wanted) for arg in typing.get_args(annotation))


def secret_fields() -> list[str]:
    """The dotted names of every ``SecretStr`` setting."""
    return [name for name, annotation in leaf_fields() if _mentions(annotation, SecretStr)]


def url_fields() -> list[str]:
    """The dotted names of every URL-valued string setting (``*_url``, ``*address``)."""
    return [
        name
        for name, annotation in leaf_fields()
        if _mentions(annotation, str) and name.endswith(("url", "address"))
    ]


def nested(dotted: str, value: Any) -> dict[str, Any]:
    """``a.b.c`` = value as nested sections: ``{"a": {"b": {"c": value}}}``."""
    head, _, rest = dotted.partition(".")
    return {head: nested(rest, value) if rest else value}


def env_name(dotted: str) -> str:
    """The environment variable of a setting: ``auth.keys_passphrase`` ->
    ``BASTION_AUTH__KEYS_PASSPHRASE``."""
    return "BASTION_" + dotted.upper().replace(".", "__")


def mutable_containers(annotation: Any) -> list[Any]:
    """The mutable container types (list, dict, set) an annotation uses anywhere."""
    origin = typing.get_origin(annotation)
    found = [annotation] if annotation in (list, dict, set) else []
    if origin in (list, dict, set):
        found.append(origin)
    model = annotation if isinstance(annotation, type) else None
    if model is not None and issubclass(model, BaseModel):
        for field in model.model_fields.values():
            found += mutable_containers(field.annotation)
    if origin is not None or isinstance(annotation, types.UnionType):
        for arg in typing.get_args(annotation):
            found += mutable_containers(arg)
    return found
