"""Playground handlers: the version picker follows a head saved elsewhere, unless an older
version was picked on purpose."""

from __future__ import annotations

from dataclasses import replace

from backend.access import local_admin
from backend.services.container import Services
from studio.playground_handlers import PlaygroundHandlers

AUTHOR = local_admin("author")


def _save_new_head(services: Services, constitution_id: int) -> int:
    head = services.constitutions.head(constitution_id)
    first = head.content.principles[0]
    edited = replace(head.content, principles=(replace(first, title=first.title + " (edited)"),
                                               *head.content.principles[1:]))
    saved = services.constitutions.save(constitution_id, head.info.id, edited, "edit",
                                        actor=AUTHOR)
    return saved.info.id


def test_a_picker_on_the_head_follows_the_new_head(services: Services) -> None:
    h = PlaygroundHandlers(services)
    (summary,) = services.constitutions.list_all()
    old_head = services.constitutions.head(summary.id).info.id
    new_head = _save_new_head(services, summary.id)

    update, shown_head = h.refresh_versions(summary.id, old_head, old_head)

    assert update["value"] == new_head and shown_head == new_head
    labels = [label for label, _ in update["choices"]]
    assert labels[0].endswith("(head)") and not labels[1].endswith("(head)")


def test_an_older_version_picked_on_purpose_stays_picked(services: Services) -> None:
    h = PlaygroundHandlers(services)
    (summary,) = services.constitutions.list_all()
    v1 = services.constitutions.head(summary.id).info.id
    v2 = _save_new_head(services, summary.id)
    _save_new_head(services, summary.id)

    update, shown_head = h.refresh_versions(summary.id, v1, v2)  # v1 picked while v2 was head

    assert update["value"] == v1 and shown_head != v2


def test_before_the_page_has_loaded_the_picker_is_left_alone(services: Services) -> None:
    h = PlaygroundHandlers(services)
    update, shown_head = h.refresh_versions(None, None, None)
    assert update == {"__type__": "update"} == shown_head


def test_judge_can_switch_the_labelling_examples_off(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Issue 12 point 2: the verdict panel's checkbox reaches the labelling config."""
    from backend.cai.labeling import LabelConfig
    from studio.playground_handlers import PlaygroundHandlers

    seen: list[LabelConfig] = []

    class Playground:
        def verdict(self, version_id, item, config, actor, policy=None):  # type: ignore[no-untyped-def]
            seen.append(config)
            raise __import__("backend.errors", fromlist=["x"]).ValidationError("stop here")

    class S:
        playground = Playground()

    handlers = PlaygroundHandlers.__new__(PlaygroundHandlers)
    handlers.s = S()  # type: ignore[assignment]
    monkeypatch.setattr("studio.playground_handlers.principal", lambda s, r: None)
    for flag in (True, False):
        handlers.judge(None, 1, None, "q", "a", "b", False, True, 1, True, 0,  # type: ignore[arg-type]
                       "chat", flag)
    assert [c.use_few_shots for c in seen] == [True, False]
