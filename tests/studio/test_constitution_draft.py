from __future__ import annotations

from backend.services.container import Services
from studio import constitution_draft as drafts


def test_round_trip_and_dirty_flag(services: Services) -> None:
    detail = services.constitutions.head(1)
    draft = drafts.from_detail(detail)
    assert drafts.to_content(draft) == detail.content and not drafts.is_dirty(draft)
    values = list(drafts.editor_values(draft))
    values[1] = "New title"
    changed = drafts.apply_editor(draft, tuple(values))
    assert drafts.is_dirty(changed) and not drafts.is_dirty(draft)  # the original is untouched
    assert changed["principles"][0]["title"] == "New title"


def test_editor_values_go_to_the_principle_with_that_key(services: Services) -> None:
    draft = drafts.select(drafts.from_detail(services.constitutions.head(1)), 0)
    values = list(drafts.editor_values(draft))
    moved = drafts.move(draft, 1)  # principle 0 is now at index 1
    values[3] = "a, b, a"
    updated = drafts.apply_editor(moved, tuple(values))
    assert updated["principles"][1]["tags"] == ["a", "b", "a"]
    assert drafts.to_content(updated).principles[1].key == values[0]


def test_add_move_delete(services: Services) -> None:
    draft = drafts.from_detail(services.constitutions.head(1))
    n = len(draft["principles"])
    added = drafts.add(drafts.select(draft, 2))
    assert len(added["principles"]) == n + 1 and added["selected"] == 3
    assert added["principles"][3]["title"] == "New principle"
    up = drafts.move(added, -1)
    assert up["selected"] == 2 and up["principles"][2]["title"] == "New principle"
    assert drafts.move(drafts.select(up, 0), -1)["selected"] == 0  # cannot move past the top
    removed = drafts.delete(up)
    assert [p["key"] for p in removed["principles"]] == [p["key"] for p in draft["principles"]]


def test_choices_label_disabled_principles(services: Services) -> None:
    draft = drafts.from_detail(services.constitutions.head(1))
    draft["principles"][1]["enabled"] = False
    labels = [label for label, _ in drafts.choices(draft)]
    assert labels[0].startswith("1. ") and labels[1].endswith("[disabled]")
