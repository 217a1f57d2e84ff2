"""Golden-case handlers driven directly (no browser), against real services."""

from __future__ import annotations

import re

import gradio as gr

from backend.services.container import Services
from studio import constitution_draft as drafts
from studio.constitution_handlers import ConstitutionHandlers
from studio.constitution_tab import build_constitution_tab
from studio.golden_handlers import GoldenHandlers
from studio.page_load import PageLoad
from tests.backend.services.test_golden import MARKER, MarkerEngine

XSS = '<img src=x onerror="alert(1)">'


def _draft(services: Services) -> drafts.Draft:
    draft: drafts.Draft = ConstitutionHandlers(services).load(None)[1]
    return draft


def test_pin_lists_the_case_and_clears_the_form(services: Services) -> None:
    g = GoldenHandlers(services)
    draft = _draft(services)
    assert g.rows(draft) == []
    result, rows, *cleared = g.pin(None, draft, "  How?  ", "Like this.", "No.", "B", "needs help")
    assert "Pinned case **#1**" in result and cleared == ["", "", "", ""]
    assert rows == [[1, "B", "How?", "needs help"]] == g.rows(draft)


def test_bad_pin_explains_and_keeps_the_form(services: Services) -> None:
    g = GoldenHandlers(services)
    result, rows, *kept = g.pin(None, _draft(services), "", "a", "b", "A", "")
    assert "Not pinned" in result and "prompt is empty" in result
    assert all(isinstance(o, type(gr.skip())) for o in [rows, *kept])
    assert "Load a constitution" in g.pin(None, None, "q", "a", "b", "A", "")[0]


def test_delete_by_id_only_within_the_constitution(services: Services) -> None:
    g = GoldenHandlers(services)
    draft = _draft(services)
    g.pin(None, draft, "q", "a", "b", "A", "")
    assert "no golden case #7" in g.delete(None, draft, 7)[0]
    assert "Type the id" in g.delete(None, draft, None)[0]
    result, rows = g.delete(None, draft, 1.0)
    assert "Deleted case **#1**" in result and rows == []
    assert services.golden.list_all(draft["constitution_id"]) == []


def test_preview_renders_an_escaped_table_of_flips(services: Services) -> None:
    services.engines.use(MarkerEngine())
    g = GoldenHandlers(services)
    draft = _draft(services)
    g.pin(None, draft, f"{XSS} which is better?", "a good answer", "a bad answer", "A", XSS)
    g.pin(None, draft, "q2 | pipe", "a good reply", "a bad reply", "B", "")
    values = list(drafts.editor_values(draft))
    assert "0 flips: 0 now right, 0 now wrong" in g.preview(None, draft, *values)

    # Any principle may be sampled, so all get the marker: the selected one only through the
    # editor box (typed, not yet folded into the draft), which the preview must pick up.
    for p in draft["principles"][1:]:
        p["choice_instruction"] += f" {MARKER}"
    values[6] = f"{values[6]} {MARKER}"
    text = g.preview(None, draft, *values)
    assert "| case | prompt | expected | before P(A) | after P(A) | flipped | result |" in text
    assert "2 flips: 1 now right, 1 now wrong" in text
    assert "**now wrong**" in text and "**now right**" in text
    assert re.search(r"(?<!\\)[<>]", text) is None  # every angle bracket is escaped
    assert "\\<img src\\=x" in text
    assert "q2 \\| pipe" in text
    assert services.constitutions.head(draft["constitution_id"]).info.number == 1


def test_preview_without_cases_and_with_an_invalid_draft(services: Services) -> None:
    services.engines.use(MarkerEngine())
    g = GoldenHandlers(services)
    draft = _draft(services)
    values = drafts.editor_values(draft)
    assert "No golden cases are pinned" in g.preview(None, draft, *values)
    g.pin(None, draft, "q", "a", "b", "A", "")
    broken = list(values)
    broken[1] = ""  # a principle without a title does not validate
    assert "No preview" in g.preview(None, draft, *broken)


def test_the_tab_builds_with_the_golden_section(services: Services) -> None:
    with gr.Blocks() as demo:
        header = gr.Markdown()
        build_constitution_tab(services, header, demo, PageLoad())
    ids = {getattr(b, "elem_id", None) for b in demo.blocks.values()}
    assert {"golden-pin", "golden-table", "golden-impact", "golden-impact-view"} <= ids
