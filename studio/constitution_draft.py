"""The editor's unsaved draft: plain JSON-able data kept in a gr.State per browser session.

A draft remembers the version it was loaded from (``base_version_id``); saving sends that
along, so a save on top of a newer head is refused instead of overwriting it.
"""

from __future__ import annotations

import copy
from typing import Any

from backend.cai.constitution import (
    ConstitutionContent,
    FewShotExample,
    Principle,
    new_principle_key,
)
from backend.services.constitutions import VersionDetail

Draft = dict[str, Any]
EDITOR_FIELDS: tuple[str, ...] = ("key", "title", "enabled", "tags", "critique_request",
                                  "revision_request", "choice_instruction")


def from_detail(detail: VersionDetail) -> Draft:
    return {
        "constitution_id": detail.constitution.id,
        "name": detail.constitution.name,
        "base_version_id": detail.info.id,
        "base_number": detail.info.number,
        "base_hash": detail.info.content_hash,
        "principles": [p.canonical() for p in detail.content.principles],
        "few_shots": [f.canonical() for f in detail.content.few_shots],
        "selected": 0,
    }


def to_content(draft: Draft) -> ConstitutionContent:
    return ConstitutionContent(
        principles=tuple(
            Principle(p["key"], p["title"], p["critique_request"], p["revision_request"],
                      p["choice_instruction"], tuple(p["tags"]), bool(p["enabled"]))
            for p in draft["principles"]
        ),
        few_shots=tuple(FewShotExample(f["kind"], f["data"]) for f in draft["few_shots"]),
    )


def is_dirty(draft: Draft) -> bool:
    return bool(to_content(draft).content_hash() != draft["base_hash"])


def parse_tags(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def apply_editor(draft: Draft, values: tuple[Any, ...]) -> Draft:
    """Write the editor's field values into the principle they belong to (matched by key)."""
    new = copy.deepcopy(draft)
    fields = dict(zip(EDITOR_FIELDS, values, strict=True))
    for p in new["principles"]:
        if p["key"] == fields["key"]:
            p["title"] = str(fields["title"] or "")
            p["enabled"] = bool(fields["enabled"])
            p["tags"] = parse_tags(str(fields["tags"] or ""))
            for name in ("critique_request", "revision_request", "choice_instruction"):
                p[name] = str(fields[name] or "")
            break
    return new


def editor_values(draft: Draft) -> tuple[Any, ...]:
    if not draft["principles"]:
        return ("", "", False, "", "", "", "")
    p = draft["principles"][draft["selected"]]
    return (p["key"], p["title"], p["enabled"], ", ".join(p["tags"]), p["critique_request"],
            p["revision_request"], p["choice_instruction"])


def choices(draft: Draft) -> list[tuple[str, int]]:
    out = []
    for i, p in enumerate(draft["principles"]):
        title = " ".join(str(p["title"]).split()) or "(untitled)"
        out.append((f"{i + 1}. {title}" + ("" if p["enabled"] else "  [disabled]"), i))
    return out


def select(draft: Draft, index: int) -> Draft:
    new = copy.deepcopy(draft)
    if new["principles"]:
        new["selected"] = max(0, min(int(index), len(new["principles"]) - 1))
    return new


def move(draft: Draft, delta: int) -> Draft:
    new = copy.deepcopy(draft)
    i = new["selected"]
    j = i + delta
    if new["principles"] and 0 <= j < len(new["principles"]):
        items = new["principles"]
        items[i], items[j] = items[j], items[i]
        new["selected"] = j
    return new


def add(draft: Draft) -> Draft:
    new = copy.deepcopy(draft)
    keys = {p["key"] for p in new["principles"]}
    key = new_principle_key()
    while key in keys:
        key = new_principle_key()
    insert_at = new["selected"] + 1 if new["principles"] else 0
    new["principles"].insert(insert_at, {
        "key": key, "title": "New principle", "critique_request": "", "revision_request": "",
        "choice_instruction": "", "tags": [], "enabled": True,
    })
    new["selected"] = insert_at
    return new


def delete(draft: Draft) -> Draft:
    new = copy.deepcopy(draft)
    if new["principles"]:
        del new["principles"][new["selected"]]
        new["selected"] = max(0, min(new["selected"], len(new["principles"]) - 1))
    return new
