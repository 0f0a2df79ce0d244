"""Prefixed ULID ids: their format, strict ordering, and ``is_id`` refusing anything else."""

from __future__ import annotations

import itertools
import os
import re
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from ulid import ULID

from bastion.core import ids
from bastion.core.ids import Kind, is_id, new_id, pattern

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


@pytest.mark.parametrize("kind", list(Kind))
def test_ids_are_prefixed_ulids(kind: Kind) -> None:
    """An id is ``<prefix>_`` plus a 26-character Crockford base32 ULID."""
    value = new_id(kind)
    prefix, _, body = value.partition("_")
    assert prefix == kind.value
    assert len(body) == 26
    assert set(body) <= set(CROCKFORD)
    assert is_id(kind, value)
    assert re.fullmatch(pattern(kind), value)


def test_the_prefixes_are_the_documented_ones() -> None:
    """The prefixes are stable: app, cli, usr, ch, msg, evt, req, tok, conn, dek, bak."""
    assert {kind.value for kind in Kind} == {
        "app",
        "cli",
        "usr",
        "ch",
        "msg",
        "evt",
        "req",
        "tok",
        "conn",
        "dek",
        "bak",
    }


def test_the_ulid_carries_the_creation_time() -> None:
    """The ULID's timestamp is now (to the millisecond), so ids sort by creation time."""
    before = datetime.now(UTC) - timedelta(milliseconds=1)
    created = ULID.from_str(new_id(Kind.MESSAGE).partition("_")[2]).datetime
    after = datetime.now(UTC) + timedelta(milliseconds=1)
    assert before <= created <= after


def test_many_ids_made_quickly_are_strictly_increasing() -> None:
    """Ids made in the same millisecond still increase strictly, with no repeats."""
    ids = [new_id(Kind.EVENT) for _ in range(20_000)]
    assert len(set(ids)) == len(ids)
    assert all(a < b for a, b in itertools.pairwise(ids))


def test_ids_increase_across_kinds_and_time() -> None:
    """The ULID part keeps increasing across kinds and across milliseconds."""
    first = new_id(Kind.USER).partition("_")[2]
    time.sleep(0.002)
    second = new_id(Kind.CHANNEL).partition("_")[2]
    assert first < second


def test_ids_from_many_threads_never_repeat() -> None:
    """Concurrent generation in several threads gives unique ids, each thread's in order."""
    results: list[list[str]] = [[] for _ in range(8)]

    def work(out: list[str]) -> None:
        out.extend(new_id(Kind.MESSAGE) for _ in range(2_000))

    threads = [threading.Thread(target=work, args=(out,)) for out in results]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [value for out in results for value in out]
    assert len(set(every)) == len(every) == 16_000
    for out in results:
        assert out == sorted(out)


def test_random_bits_are_fresh_across_refills_of_the_random_pool() -> None:
    """Ids spread over several reads of the operating system's random bytes never repeat
    their random part (a pool reused from its start would)."""
    parts = [ids._generator._random() for _ in range(1_200)]  # three pools' worth
    assert len(set(parts)) == len(parts)


def test_a_forked_child_does_not_reuse_its_parents_random_bytes() -> None:
    """After fork the child draws new random bytes (its ids and the parent's, made from
    the same pool position, differ in their random part) and forgets the parent's last
    id, so the two never both step to the id after it."""
    new_id(Kind.MESSAGE)  # the pool holds unused bytes now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, ids._generator._random().to_bytes(10) + ids._generator._last.to_bytes(16))
        os._exit(0)
    os.close(write)
    answer = os.read(read, 26)
    os.close(read)
    os.waitpid(pid, 0)
    assert int.from_bytes(answer[:10]) != ids._generator._random()
    assert int.from_bytes(answer[10:]) == 0  # the child steps from no value of the parent's


def test_is_id_rejects_other_kinds() -> None:
    """An id of one kind is never accepted as another kind."""
    for kind in Kind:
        value = new_id(kind)
        for other in Kind:
            assert is_id(other, value) is (other is kind)


@pytest.mark.parametrize(
    "transform",
    [
        lambda v: v.lower(),
        lambda v: v.replace("usr_", "USR_"),
        lambda v: v.replace("usr_", "usr-"),
        lambda v: v.replace("usr_", ""),
        lambda v: v[:-1],
        lambda v: v + "0",
        lambda v: v + "\n",
        lambda v: "\n" + v,
        lambda v: " " + v,
        lambda v: v + " ",
        lambda v: v[:-1] + "I",
        lambda v: v[:-1] + "L",
        lambda v: v[:-1] + "O",
        lambda v: v[:-1] + "U",
        lambda v: v[:-1] + "\u0661",
        lambda v: v + "/../x",
        lambda v: "usr_" + v,
    ],
)
def test_is_id_rejects_near_misses(transform: object) -> None:
    """Case changes, wrong separators, wrong length, non-Crockford letters, whitespace
    (a trailing newline included) and path tricks are all refused."""
    assert callable(transform)
    value = new_id(Kind.USER)
    mangled = transform(value)
    assert mangled != value
    assert not is_id(Kind.USER, mangled)


@pytest.mark.parametrize("value", ["", "usr_", "usr", "_", "usr_" + "0" * 27, "' OR 1=1 --"])
def test_is_id_rejects_garbage(value: str) -> None:
    """Empty and malformed strings are not ids."""
    assert not is_id(Kind.USER, value)
