"""``audit verify``: find modified, deleted, inserted and reordered records, and say where.

Each record is checked against its own hash (a changed field shows as *modified*), then
each link to the record before it. A broken link is classified by what the links still
say: a record nobody points to, squeezed between two that still point to each other,
was *inserted*; a record pointing to one that exists elsewhere was *reordered*; a gap
in the sequence means records were *deleted*. Signed checkpoints then pin the chain:
a rewrite that recomputed every hash, or a cut-off tail, no longer matches them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from joserfc.jwk import KeySet

from bastion.security.audit import records
from bastion.security.audit.checkpoints import (
    InvalidSignature,
    open_signature,
    payload_of,
)
from bastion.store.db import Database
from bastion.store.repos import audit as repo

Kind = Literal["modified", "deleted", "inserted", "reordered", "checkpoint"]
_BATCH = 5000


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, with the sequence number where it shows."""

    kind: Kind
    seq: int | None
    message: str


@dataclass(slots=True)
class Report:
    """What ``verify`` found."""

    records: int = 0
    checkpoints: int = 0
    unsigned_tail: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def intact(self) -> bool:
        """True when nothing was found."""
        return not self.findings

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-ready data."""
        return {
            "intact": self.intact,
            "records": self.records,
            "checkpoints": self.checkpoints,
            "unsigned_tail": self.unsigned_tail,
            "findings": [
                {"kind": f.kind, "seq": f.seq, "message": f.message} for f in self.findings
            ],
        }


@dataclass(frozen=True, slots=True)
class _Link:
    seq: int
    hash: str
    prev: str
    sound: bool


async def _links(db: Database) -> list[_Link]:
    links: list[_Link] = []
    after = 0
    while True:
        async with db.read() as conn:
            rows = await repo.records_after(conn, after, _BATCH)
        if not rows:
            return links
        for row in rows:
            sound = records.record_hash(row) == row["hash"]
            links.append(_Link(int(row["seq"]), row["hash"], row["prev_hash"], sound))
        after = links[-1].seq


def _check_chain(links: list[_Link]) -> list[Finding]:
    findings = [
        Finding("modified", link.seq, f"record {link.seq} does not match its hash")
        for link in links
        if not link.sound
    ]
    position = {link.hash: i for i, link in enumerate(links)}
    pointed = {link.prev for link in links}
    i = 0
    while i < len(links):
        expected = links[i - 1].hash if i > 0 else records.GENESIS
        if links[i].prev == expected:
            i += 1
            continue
        finding, step = _classify(links, i, expected, position, pointed)
        findings.append(finding)
        i += step
    return sorted(findings, key=lambda f: f.seq or 0)


def _classify(
    links: list[_Link], i: int, expected: str, position: dict[str, int], pointed: set[str]
) -> tuple[Finding, int]:
    """Explain the broken link into ``links[i]``; also say how far to skip ahead."""
    link = links[i]
    before = links[i - 2].hash if i >= 2 else records.GENESIS
    if i >= 1 and links[i - 1].hash not in pointed and link.prev == before:
        seq = links[i - 1].seq
        return Finding("inserted", seq, f"record {seq} is not part of the chain"), 1
    following = links[i + 1] if i + 1 < len(links) else None
    if link.prev not in position and following is not None and following.prev == expected:
        return Finding("inserted", link.seq, f"record {link.seq} is not part of the chain"), 2
    if link.prev in position:
        origin = links[position[link.prev]].seq
        message = f"record {link.seq} belongs right after record {origin}"
        return Finding("reordered", link.seq, message), 1
    previous_seq = links[i - 1].seq if i > 0 else 0
    if link.seq - previous_seq > 1:
        gap = f"{previous_seq + 1}..{link.seq - 1}"
        return Finding("deleted", previous_seq + 1, f"records {gap} are missing"), 1
    if i > 0:
        message = (
            f"record {previous_seq} was changed and re-hashed, or a record after it was "
            "deleted and the rest renumbered"
        )
        return Finding("modified", previous_seq, message), 1
    return Finding("deleted", 1, "the start of the log is missing"), 1


async def _check_checkpoints(
    db: Database, links: list[_Link], keys: KeySet, alg: str, report: Report
) -> None:
    async with db.read() as conn:
        rows = await repo.checkpoints(conn)
    by_seq = {link.seq: i for i, link in enumerate(links)}
    previous: dict[str, Any] | None = None
    for row in rows:
        report.checkpoints += 1
        report.findings.extend(_check_checkpoint(row, previous, links, by_seq, keys, alg))
        previous = row
    signed_up_to = int(previous["last_seq"]) if previous else 0
    report.unsigned_tail = sum(1 for link in links if link.seq > signed_up_to)


def _check_checkpoint(
    row: dict[str, Any],
    previous: dict[str, Any] | None,
    links: list[_Link],
    by_seq: dict[int, int],
    keys: KeySet,
    alg: str,
) -> list[Finding]:
    number = row["number"]
    expected_number = 1 if previous is None else int(previous["number"]) + 1
    if number != expected_number:
        return [Finding("checkpoint", None, f"checkpoint {expected_number} is missing")]
    try:
        signed = open_signature(row["signature"], keys, alg)
    except InvalidSignature:
        return [Finding("checkpoint", None, f"checkpoint {number} has an invalid signature")]
    if signed != payload_of(row, previous["signature"] if previous else None):
        return [Finding("checkpoint", None, f"checkpoint {number} was altered")]
    return _check_range(row, links, by_seq)


def _check_range(row: dict[str, Any], links: list[_Link], by_seq: dict[int, int]) -> list[Finding]:
    number, first, last = row["number"], int(row["first_seq"]), int(row["last_seq"])
    if last not in by_seq:
        return [Finding("deleted", last, f"record {last}, signed by checkpoint {number}, is gone")]
    if links[by_seq[last]].hash != row["last_hash"]:
        message = f"records up to {last} differ from what checkpoint {number} signed"
        return [Finding("modified", last, message)]
    hashes = [link.hash for link in links if first <= link.seq <= last]
    if records.digest(hashes) != row["digest"]:
        message = f"records {first}..{last} differ from what checkpoint {number} signed"
        return [Finding("modified", first, message)]
    return []


async def verify(db: Database, keys: KeySet, alg: str) -> Report:
    """Check the whole audit log and its checkpoints."""
    links = await _links(db)
    report = Report(records=len(links))
    report.findings.extend(_check_chain(links))
    await _check_checkpoints(db, links, keys, alg, report)
    return report
