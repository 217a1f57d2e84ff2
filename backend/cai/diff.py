"""Principle-by-principle diff of two constitution versions.

Principles are matched by their stable ``key`` (kept across edits), so a renamed or reworded
principle shows as *changed*, not as one removed and one added.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Literal

from backend.cai.constitution import ConstitutionContent, Principle

ChangeKind = Literal["added", "removed", "changed", "moved"]
TEXT_FIELDS: tuple[str, ...] = ("title", "critique_request", "revision_request",
                                "choice_instruction")


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str
    new: str

    def unified(self) -> str:
        """A line diff of the field, for display as code (never as HTML)."""
        lines = difflib.unified_diff(
            self.old.splitlines(), self.new.splitlines(), "before", "after", lineterm="", n=2
        )
        return "\n".join(lines)


@dataclass(frozen=True)
class PrincipleChange:
    kind: ChangeKind
    key: str
    title: str
    old_position: int | None
    new_position: int | None
    fields: tuple[FieldChange, ...] = ()


@dataclass(frozen=True)
class ConstitutionDiff:
    changes: tuple[PrincipleChange, ...]
    few_shots_changed: bool
    old_hash: str
    new_hash: str
    summary_counts: dict[str, int] = field(default_factory=dict)

    @property
    def is_empty(self) -> bool:
        return not self.changes and not self.few_shots_changed


def _field_changes(old: Principle, new: Principle) -> tuple[FieldChange, ...]:
    changes = [
        FieldChange(name, getattr(old, name), getattr(new, name))
        for name in TEXT_FIELDS
        if getattr(old, name) != getattr(new, name)
    ]
    if old.tags != new.tags:
        changes.append(FieldChange("tags", ", ".join(old.tags), ", ".join(new.tags)))
    if old.enabled != new.enabled:
        changes.append(FieldChange("enabled", str(old.enabled), str(new.enabled)))
    return tuple(changes)


def _moved_keys(old_keys: list[str], new_keys: list[str]) -> set[str]:
    """Keys whose relative order changed: those outside a longest common subsequence."""
    common = [k for k in old_keys if k in set(new_keys)]
    kept = [k for k in new_keys if k in set(old_keys)]
    matcher = difflib.SequenceMatcher(a=common, b=kept, autojunk=False)
    stable = {common[b.a + i] for b in matcher.get_matching_blocks() for i in range(b.size)}
    return set(common) - stable


def diff_contents(old: ConstitutionContent, new: ConstitutionContent) -> ConstitutionDiff:
    old_by_key = {p.key: (i, p) for i, p in enumerate(old.principles)}
    new_by_key = {p.key: (i, p) for i, p in enumerate(new.principles)}
    moved = _moved_keys([p.key for p in old.principles], [p.key for p in new.principles])
    changes: list[PrincipleChange] = []
    for key, (i, p) in old_by_key.items():
        if key not in new_by_key:
            changes.append(PrincipleChange("removed", key, p.title, i + 1, None))
    for key, (j, p) in new_by_key.items():
        if key not in old_by_key:
            changes.append(PrincipleChange("added", key, p.title, None, j + 1,
                                           _field_changes(_blank(key), p)))
            continue
        i, before = old_by_key[key]
        fields = _field_changes(before, p)
        if fields:
            changes.append(PrincipleChange("changed", key, p.title, i + 1, j + 1, fields))
        elif key in moved:
            changes.append(PrincipleChange("moved", key, p.title, i + 1, j + 1))
    changes.sort(key=lambda c: (c.new_position or 10**6, c.old_position or 0))
    counts: dict[str, int] = {}
    for c in changes:
        counts[c.kind] = counts.get(c.kind, 0) + 1
    return ConstitutionDiff(
        changes=tuple(changes),
        few_shots_changed=old.few_shots != new.few_shots,
        old_hash=old.content_hash(),
        new_hash=new.content_hash(),
        summary_counts=counts,
    )


def _blank(key: str) -> Principle:
    return Principle(key=key, title="", critique_request="", revision_request="",
                     choice_instruction="", tags=(), enabled=True)
