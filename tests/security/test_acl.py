"""The ACL evaluator: deny overrides allow, and no change that should narrow ever widens."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from bastion.security.acl import (
    ORDER,
    Effect,
    Entry,
    Level,
    Subject,
    at_least,
    at_most,
    denied,
    evaluate,
)

USERS = ["usr_a", "usr_b"]
ROLES = ["auditor", "moderator", "member"]

subjects = st.builds(
    Subject,
    user_id=st.sampled_from([*USERS, None]),
    roles=st.frozensets(st.sampled_from(ROLES)),
)
entry_subjects = st.sampled_from(
    ["*"] + [f"user:{u}" for u in USERS] + [f"role:{r}" for r in ROLES] + ["user:usr_z"]
)
entries = st.builds(
    Entry, subject=entry_subjects, level=st.sampled_from(ORDER), effect=st.sampled_from(Effect)
)
entry_lists = st.lists(entries, max_size=8)
baselines = st.frozensets(st.sampled_from(ORDER))


@given(subjects, baselines, entry_lists, st.randoms())
def test_order_of_entries_does_not_matter(
    subject: Subject, baseline: frozenset[Level], acl: list[Entry], rnd: random.Random
) -> None:
    """Deny wins whatever position it has in the list."""
    shuffled = list(acl)
    rnd.shuffle(shuffled)
    assert evaluate(subject, baseline, acl) == evaluate(subject, baseline, shuffled)


@given(subjects, baselines, entry_lists)
def test_a_matching_deny_always_overrides_allow(
    subject: Subject, baseline: frozenset[Level], acl: list[Entry]
) -> None:
    """Whatever is allowed (baseline or entries), a matching deny of a level removes it
    and every stronger level."""
    held = evaluate(subject, baseline, acl)
    for entry in acl:
        if entry.effect is Effect.DENY and subject.matches(entry.subject):
            assert not held & at_least(entry.level)


@given(subjects, baselines, entry_lists, st.data())
def test_removing_an_allow_never_widens(
    subject: Subject, baseline: frozenset[Level], acl: list[Entry], data: st.DataObject
) -> None:
    """Dropping any allow entry gives a subset of the access before."""
    allows = [i for i, e in enumerate(acl) if e.effect is Effect.ALLOW]
    if not allows:
        return
    drop = data.draw(st.sampled_from(allows))
    smaller = acl[:drop] + acl[drop + 1 :]
    assert evaluate(subject, baseline, smaller) <= evaluate(subject, baseline, acl)


@given(subjects, baselines, entry_lists, entries)
def test_adding_a_deny_never_widens(
    subject: Subject, baseline: frozenset[Level], acl: list[Entry], extra: Entry
) -> None:
    """Appending a deny entry gives a subset of the access before."""
    deny = Entry(extra.subject, extra.level, Effect.DENY)
    assert evaluate(subject, baseline, [*acl, deny]) <= evaluate(subject, baseline, acl)


@given(subjects, baselines, entry_lists)
def test_access_is_downward_closed(
    subject: Subject, baseline: frozenset[Level], acl: list[Entry]
) -> None:
    """Whoever may write may read: the result always contains every weaker level."""
    held = evaluate(subject, baseline, acl)
    for level in held:
        assert at_most(level) <= held


@given(subjects, entry_lists)
def test_entries_for_others_change_nothing(subject: Subject, acl: list[Entry]) -> None:
    """Entries naming someone else neither grant nor take away."""
    foreign = [e for e in acl if not subject.matches(e.subject)]
    assert evaluate(subject, {Level.WRITE}, foreign) == at_most(Level.WRITE)


def test_broadcast_poster_and_channel_auditor_examples() -> None:
    """The documented examples: a listed poster writes; an auditor role reads only."""
    poster = Subject("usr_a", frozenset({"member"}))
    reader = Subject("usr_b", frozenset({"member"}))
    acl = [Entry("user:usr_a", Level.WRITE, Effect.ALLOW)]
    assert Level.WRITE in evaluate(poster, {Level.READ}, acl)
    assert Level.WRITE not in evaluate(reader, {Level.READ}, acl)
    auditor = Subject("usr_c", frozenset({"auditor"}))
    audit_acl = [
        Entry("role:auditor", Level.READ, Effect.ALLOW),
        Entry("role:auditor", Level.WRITE, Effect.DENY),
    ]
    assert evaluate(auditor, set(), audit_acl) == {Level.READ}
    assert evaluate(auditor, {Level.MANAGE}, audit_acl) == {Level.READ}


@given(subjects, baselines, entry_lists)
def test_denied_names_exactly_what_the_denies_took_away(
    subject: Subject, baseline: frozenset[Level], acl: list[Entry]
) -> None:
    """``denied`` is never held, and the levels held are what the allows give minus it."""
    held = evaluate(subject, baseline, acl)
    taken = denied(subject, acl)
    allows_only = [e for e in acl if e.effect is Effect.ALLOW]
    assert not held & taken
    assert held == evaluate(subject, baseline, allows_only) - taken
