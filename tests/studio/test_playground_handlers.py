"""Playground handlers: the version picker follows a head saved elsewhere, unless an older
version was picked on purpose."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace

from backend.access import local_admin
from backend.engines.base import GenerationParams, Prompt
from backend.engines.scripted import ScriptedEngine
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


class _FastTokens(ScriptedEngine):
    """Streams 300 one-letter tokens as fast as it can (a server streams 50-100 a second)."""

    def stream(self, prompt: Prompt, params: GenerationParams) -> Iterator[str]:
        yield from "x" * 300


def test_a_fast_stream_updates_the_page_a_few_times_not_once_per_token(
        services: Services) -> None:
    services.engines.use(_FastTokens())
    h = PlaygroundHandlers(services)
    (summary,) = services.constitutions.list_all()
    head = services.constitutions.head(summary.id).info.id
    updates = list(h.preview(None, head, "sample", "hello", 1, 64, 0.0, 0, "chat"))
    # three steps (response, critique, revision) of 300 tokens each: each finished step is
    # sent, and in between at most one update per STREAM_INTERVAL_S
    assert 3 <= len(updates) < 30
    assert "x" * 300 in updates[-1] and updates[-1].count("critique log record") == 3
