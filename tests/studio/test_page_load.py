"""The page opens with few events (studio/page_load.py): Gradio's page does work over every
component for each one, and 17 of them kept a 2-core machine busy ~4 s longer."""

from __future__ import annotations

from typing import Any

import gradio as gr
import pytest

from backend.errors import StudioError
from backend.services.container import Services
from backend.settings import Settings
from studio.app import build_app
from studio.page_load import PageLoad


def test_the_studio_page_opens_with_four_events(settings: Settings,
                                                services: Services) -> None:
    demo = build_app(settings, services)
    loads = sorted(fn.api_name or "" for fn in demo.fns.values()
                   if any(event == "load" for _, event in fn.targets))
    # the visible tab's two (they must not wait for the others), the model line (it waits
    # for the model), and every other tab's at once
    assert loads == ["constitution_load", "constitution_permissions", "header_model",
                     "page_load"]
    parts = PageLoad.of(demo)
    for name in ("agreement_load", "jobs_load", "audit_opening", "users_list", "linked_tab",
                 "header_user"):
        assert name in parts.names()


def test_a_part_that_fails_leaves_the_others_and_says_which(recwarn: pytest.WarningsRecorder
                                                            ) -> None:
    with gr.Blocks() as demo:
        a, b, c = gr.Markdown(), gr.Markdown(), gr.Markdown()
        on_open = PageLoad()

        def broken() -> Any:
            raise StudioError("the store is locked; try again")

        on_open.add("first", lambda: "one", a, where="the first tab")
        on_open.add("broken", broken, [b, c], where="the Audit tab")
        on_open.add("last", lambda request: f"r={request is not None}", c, where="the header")
        on_open.register(demo)
    values = on_open.run(gr.Request())
    assert values[0] == "one" and values[3] == "r=True"
    assert all(isinstance(v, dict) and v.get("__type__") == "update" and len(v) == 1
               for v in values[1:3]), values  # gr.skip(): those outputs keep what they show
    assert [str(w.message) for w in recwarn if "could not load" in str(w.message)] == [
        "The Audit tab could not load: the store is locked; try again"]


def test_an_api_client_gets_each_part_by_name() -> None:
    with gr.Blocks() as demo:
        state, shown, other = gr.State(), gr.Markdown(), gr.Markdown()
        on_open = PageLoad()
        on_open.add("first", lambda: (1, "a"), [state, shown], where="x")
        on_open.add("second", lambda: "b", other, where="y")
        on_open.register(demo)
    # a client gets no value for the State
    assert on_open.part("first", ["a", "b"]) == ["a"]
    assert on_open.part("second", ["a", "b"]) == ["b"]
    with pytest.raises(KeyError):
        on_open.part("third", ["a", "b"])
