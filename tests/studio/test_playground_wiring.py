"""Issue 14, point 5: a long Playground preview can be stopped, and model calls run in a small
shared pool so the rest of the studio stays responsive."""

from __future__ import annotations

from backend.services.container import Services
from backend.settings import Settings
from studio.app import build_app
from studio.playground_tab import MODEL_CALLS


def test_previews_are_bounded_and_stoppable(settings: Settings, services: Services) -> None:
    demo = build_app(settings, services)
    fns = {fn.api_name: fn for fn in demo.fns.values()}
    for name in ("playground_preview", "playground_sample", "playground_judge"):
        fn = fns[name]
        assert fn.concurrency_id == "playground-model", name
        assert fn.concurrency_limit == MODEL_CALLS, name
    ids = {fn.api_name: i for i, fn in demo.fns.items()}
    stop_triggers = fns["playground_stop"].targets
    cancelling = [fn for fn in demo.fns.values()
                  if fn.is_cancel_function and fn.targets == stop_triggers]
    assert len(cancelling) == 1
    assert {ids["playground_preview"], ids["playground_sample"],
            ids["playground_judge"]} <= set(cancelling[0].cancels)
    assert fns["constitution_load"].concurrency_id != "playground-model"
