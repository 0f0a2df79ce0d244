"""Log analysis over audit records: who fails, who is attacked, who is denied, what is new.

Works on plain records (the audit log's export shape), so the same report comes from
the live database or from a JSON-lines export copied elsewhere.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from bastion.observe.detectors import AUTH_ACTIONS

Record = Mapping[str, Any]
_FAILED = frozenset({"failure", "denied"})
_TOP = 10
_UNUSUAL_MIN_HISTORY = 10


@dataclass(slots=True)
class Report:
    """The sections of ``bastion logs analyze``; each is a list of plain rows."""

    records: int = 0
    window_start: str | None = None
    top_failure_sources: list[dict[str, Any]] = field(default_factory=list)
    accounts_under_attack: list[dict[str, Any]] = field(default_factory=list)
    denied_by_principal: list[dict[str, Any]] = field(default_factory=list)
    new_ips_per_account: list[dict[str, Any]] = field(default_factory=list)
    unusual_hours: list[dict[str, Any]] = field(default_factory=list)
    tokens_revoked_for_reuse: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return asdict(self)


def _at(record: Record) -> datetime:
    return datetime.fromisoformat(str(record["at"]).replace("Z", "+00:00")).astimezone(UTC)


def _account(record: Record) -> str:
    details = record.get("details") or {}
    return str(record.get("subject") or details.get("username") or record.get("client_id") or "-")


def analyze(records: Iterable[Record], since: datetime | None, app: str | None = None) -> Report:
    """Build the report over records at or after ``since`` (history before it is context)."""
    history: list[Record] = []
    window: list[Record] = []
    for record in records:
        if app is not None and record.get("app_id") != app:
            continue
        (window if since is None or _at(record) >= since else history).append(record)
    report = Report(records=len(window), window_start=since.isoformat() if since else None)
    report.top_failure_sources = _failure_sources(window)
    report.accounts_under_attack = _accounts_under_attack(window)
    report.denied_by_principal = _denied(window)
    report.new_ips_per_account = _new_ips(history, window)
    report.unusual_hours = _unusual_hours(history, window)
    report.tokens_revoked_for_reuse = [
        {
            "at": r["at"],
            "subject": r.get("subject"),
            "client_id": r.get("client_id"),
            "ip": r.get("ip"),
        }
        for r in window
        if r["action"] == "token.reuse_detected"
    ]
    return report


def _failure_sources(window: list[Record]) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    accounts: dict[str, set[str]] = defaultdict(set)
    for record in window:
        if record["outcome"] in _FAILED:
            ip = str(record.get("ip") or "-")
            counts[ip] += 1
            accounts[ip].add(_account(record))
    return [
        {"ip": ip, "failures": count, "accounts": len(accounts[ip])}
        for ip, count in counts.most_common(_TOP)
    ]


def _accounts_under_attack(window: list[Record]) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    sources: dict[str, set[str]] = defaultdict(set)
    for record in window:
        if record["action"] in AUTH_ACTIONS and record["outcome"] == "failure":
            account = _account(record)
            counts[account] += 1
            sources[account].add(str(record.get("ip") or "-"))
    return [
        {"account": account, "failures": count, "sources": len(sources[account])}
        for account, count in counts.most_common(_TOP)
    ]


def _denied(window: list[Record]) -> list[dict[str, Any]]:
    counts: Counter[str] = Counter()
    actions: dict[str, Counter[str]] = defaultdict(Counter)
    for record in window:
        if record["outcome"] == "denied":
            principal = _account(record)
            counts[principal] += 1
            actions[principal][record["action"]] += 1
    return [
        {"principal": p, "denied": n, "actions": dict(actions[p].most_common(5))}
        for p, n in counts.most_common(_TOP)
    ]


def _new_ips(history: list[Record], window: list[Record]) -> list[dict[str, Any]]:
    known: dict[str, set[str]] = defaultdict(set)
    for record in history:
        if record.get("subject") and record.get("ip"):
            known[record["subject"]].add(record["ip"])
    new: dict[str, set[str]] = defaultdict(set)
    for record in window:
        subject, ip = record.get("subject"), record.get("ip")
        if subject and ip and subject in known and ip not in known[subject]:
            new[subject].add(ip)
    return [{"account": s, "new_ips": sorted(ips)} for s, ips in sorted(new.items())][: _TOP * 5]


def _unusual_hours(history: list[Record], window: list[Record]) -> list[dict[str, Any]]:
    """Activity in an hour of the day the account had never been active in before."""
    hours: dict[str, Counter[int]] = defaultdict(Counter)
    for record in history:
        if record.get("subject"):
            hours[record["subject"]][_at(record).hour] += 1
    unusual: Counter[tuple[str, int]] = Counter()
    for record in window:
        subject = record.get("subject")
        if not subject or sum(hours[subject].values()) < _UNUSUAL_MIN_HISTORY:
            continue
        hour = _at(record).hour
        if hours[subject][hour] == 0:
            unusual[(subject, hour)] += 1
    return [
        {"account": subject, "hour_utc": hour, "events": count}
        for (subject, hour), count in unusual.most_common(_TOP * 5)
    ]
