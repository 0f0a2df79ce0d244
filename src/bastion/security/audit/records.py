"""Audit records: an event's stored form, its hash in the chain, and what gets HMAC'd.

A record's hash is SHA-256 over the previous record's hash and the canonical JSON of
its fields (keys sorted, no whitespace). The sequence number is deliberately not
hashed: order is what the ``prev_hash`` links say, so a record moved to another place
shows up as a broken link rather than as a changed record.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
from collections.abc import Iterable, Mapping
from datetime import UTC
from typing import Any, Literal

from bastion.observe.events import SecurityEvent

GENESIS = "0" * 64
"""The ``prev_hash`` of the first record."""

HASHED_FIELDS = (
    "at",
    "action",
    "outcome",
    "node",
    "event_seq",
    "app_id",
    "subject",
    "client_id",
    "roles",
    "ip",
    "user_agent",
    "request_id",
    "resource",
    "reason",
    "details",
    "prev_hash",
)

_SECRET_WORDS = ("password", "secret", "token", "authorization", "cookie", "text", "body")
_HMAC_PREFIX = "hmac-sha256:"
_USER_AGENT_MAX = 512
_NAMES_KEPT = 1024
_SHORT_MAX = 255

IpMode = Literal["full", "truncate", "hmac"]


# Built once: json.dumps with any option set builds a new encoder on every call.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)
_DETAILS = json.JSONEncoder(sort_keys=True, default=str)
_NO_ROLES = json.dumps([])


def canonical(data: Mapping[str, Any]) -> bytes:
    """The one byte form that is hashed and signed."""
    return _CANONICAL.encode(data).encode()


def record_hash(row: Mapping[str, Any]) -> str:
    """The hash a record must carry, from its fields and ``prev_hash``."""
    return hashlib.sha256(canonical({name: row[name] for name in HASHED_FIELDS})).hexdigest()


def digest(hashes: Iterable[str]) -> str:
    """SHA-256 over a run of record hashes, for checkpoints."""
    summary = hashlib.sha256()
    for value in hashes:
        summary.update(value.encode())
    return summary.hexdigest()


def format_time(event: SecurityEvent) -> str:
    """RFC 3339 UTC with microseconds, as stored and hashed."""
    return event.at.astimezone(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


class Redactor:
    """Keeps secrets out of records and turns correlatable identifiers into HMACs."""

    def __init__(self, key: bytes, hmac_fields: Iterable[str], ip_mode: IpMode) -> None:
        self._key = key
        self._fields = frozenset(hmac_fields)
        self._ip_mode = ip_mode
        self._hidden_names: dict[str, bool] = {}

    def hash(self, value: str) -> str:
        """``hmac-sha256:<hex>`` of a value: equal inputs give equal outputs, nothing more."""
        mac = hmac.new(self._key, value.encode(), hashlib.sha256).hexdigest()
        return _HMAC_PREFIX + mac

    def _hidden(self, name: str) -> bool:
        known = self._hidden_names.get(name)
        if known is None:
            lowered = name.lower()
            known = name in self._fields or any(word in lowered for word in _SECRET_WORDS)
            if len(self._hidden_names) < _NAMES_KEPT:  # detail names come from the code
                self._hidden_names[name] = known
        return known

    def details(self, details: Mapping[str, Any]) -> dict[str, Any]:
        """Event details with secret and listed fields replaced by their HMAC."""
        return {
            name: self.hash(str(value)) if value is not None and self._hidden(name) else value
            for name, value in details.items()
        }

    def ip(self, address: str | None) -> str | None:
        """The client address as configured: full, truncated to its network, or HMAC'd."""
        if address is None or self._ip_mode == "full":
            return address
        if self._ip_mode == "hmac":
            return self.hash(address)
        return truncate_ip(address)


def truncate_ip(address: str) -> str:
    """Drop the host part: /24 for IPv4, /48 for IPv6 (unparseable values are dropped)."""
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return "invalid"
    prefix = 24 if parsed.version == 4 else 48
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False).network_address)


def _clip(value: str | None, limit: int = _SHORT_MAX) -> str | None:
    return None if value is None else value[:limit]


def to_row(event: SecurityEvent, redactor: Redactor) -> dict[str, Any]:
    """The stored fields of an event (without ``seq``, ``prev_hash`` and ``hash``)."""
    return {
        "at": format_time(event),
        "action": event.action[:64],
        "outcome": event.outcome,
        "node": event.node[:_SHORT_MAX],
        "event_seq": event.sequence,
        "app_id": _clip(event.actor.app_id, 40),
        "subject": _clip(event.actor.subject),
        "client_id": _clip(event.actor.client_id),
        "roles": json.dumps(sorted(event.actor.roles)) if event.actor.roles else _NO_ROLES,
        "ip": _clip(redactor.ip(event.origin.ip), 100),
        "user_agent": _clip(event.origin.user_agent, _USER_AGENT_MAX),
        "request_id": _clip(event.origin.request_id, 100),
        "resource": _clip(event.resource),
        "reason": _clip(event.reason),
        "details": _DETAILS.encode(redactor.details(event.details)),
    }


def chain(rows: list[dict[str, Any]], head: tuple[int, str] | None) -> list[dict[str, Any]]:
    """Number and hash ``rows`` so that they extend the chain ending at ``head``."""
    seq, prev = head if head is not None else (0, GENESIS)
    for row in rows:
        seq += 1
        row["seq"] = seq
        row["prev_hash"] = prev
        row["hash"] = prev = record_hash(row)
    return rows


def as_event_dict(row: Mapping[str, Any]) -> dict[str, Any]:
    """A stored record as the JSON the auditor API and exports show."""
    data = {name: row[name] for name in HASHED_FIELDS if name not in ("roles", "details")}
    data["seq"] = row["seq"]
    data["hash"] = row["hash"]
    data["roles"] = json.loads(row["roles"])
    data["details"] = json.loads(row["details"])
    return data


def export_dict(event: SecurityEvent, redactor: Redactor) -> dict[str, Any]:
    """An event as sent to a SIEM: the audit log's redaction, the event's own shape."""
    data = event.as_dict()
    data["at"] = format_time(event)
    data["ip"] = redactor.ip(event.origin.ip)
    data["details"] = redactor.details(event.details)
    return data
