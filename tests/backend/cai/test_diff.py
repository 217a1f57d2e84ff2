from __future__ import annotations

import dataclasses

from backend.cai.constitution import ConstitutionContent, FewShotExample
from backend.cai.diff import diff_contents
from tests.backend.cai.test_constitution import principle


def test_identical_contents_have_an_empty_diff() -> None:
    c = ConstitutionContent((principle("a", "A"), principle("b", "B")))
    d = diff_contents(c, c)
    assert d.is_empty and d.old_hash == d.new_hash


def test_added_removed_changed_and_moved_are_told_apart() -> None:
    a, b, c, d = (principle(k, k.upper()) for k in "abcd")
    old = ConstitutionContent((a, b, c, d))
    b2 = dataclasses.replace(b, title="B renamed", choice_instruction="New choice?")
    e = principle("e", "E")
    new = ConstitutionContent((d, a, b2, e))  # d moved up, c removed, e added, b changed
    diff = diff_contents(old, new)
    kinds = {c.key: c.kind for c in diff.changes}
    assert kinds == {"d": "moved", "b": "changed", "c": "removed", "e": "added"}
    changed = next(ch for ch in diff.changes if ch.key == "b")
    assert [f.field for f in changed.fields] == ["title", "choice_instruction"]
    assert changed.fields[0].old == "B" and changed.fields[0].new == "B renamed"
    assert "-B" in changed.fields[0].unified() and "+B renamed" in changed.fields[0].unified()
    assert diff.summary_counts == {"moved": 1, "changed": 1, "removed": 1, "added": 1}


def test_enabled_flag_and_few_shots_show_up() -> None:
    a = principle("a", "A")
    old = ConstitutionContent((a,), (FewShotExample("choice", {"prompt": "x"}),))
    new = ConstitutionContent((dataclasses.replace(a, enabled=False),))
    diff = diff_contents(old, new)
    assert diff.few_shots_changed
    assert diff.changes[0].fields[0].field == "enabled"
