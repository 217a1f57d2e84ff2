"""Handlers driven directly (no browser), against real services."""

from __future__ import annotations

from pathlib import Path

import gradio as gr

from backend.services.container import Services
from studio import constitution_draft as drafts
from studio.constitution_handlers import FULL_OUTPUTS_WITH_PICKER, ConstitutionHandlers


def test_load_returns_every_output(services: Services) -> None:
    out = ConstitutionHandlers(services).load(None)
    assert len(out) == FULL_OUTPUTS_WITH_PICKER
    draft = out[1]
    assert draft["name"] == "Studio default" and len(draft["principles"]) == 16


def test_save_uses_the_editor_text_even_if_no_input_event_arrived(services: Services) -> None:
    h = ConstitutionHandlers(services)
    draft = h.load(None)[1]
    values = list(drafts.editor_values(draft))
    values[1] = "Typed but not yet synced"
    result, message, saved_draft, *_ = h.save(None, draft, "quick save", *values)
    assert "Saved **v2**" in result and message == ""
    assert services.constitutions.head(1).content.principles[0].title == values[1]
    assert saved_draft["base_number"] == 2


def test_conflicting_save_keeps_the_draft_and_says_so(services: Services) -> None:
    h = ConstitutionHandlers(services)
    a = h.load(None)[1]
    b = h.load(None)[1]
    va, vb = list(drafts.editor_values(a)), list(drafts.editor_values(b))
    va[1], vb[1] = "From A", "From B"
    h.save(None, a, "a", *va)
    result, message, kept, *_ = h.save(None, b, "b", *vb)
    assert "Conflict" in result and message == "b"
    assert kept["principles"][0]["title"] == "From B" and kept["base_number"] == 1
    assert services.constitutions.head(1).content.principles[0].title == "From A"


def test_empty_message_is_asked_for(services: Services) -> None:
    h = ConstitutionHandlers(services)
    draft = h.load(None)[1]
    values = list(drafts.editor_values(draft))
    values[1] = "Changed"
    result, *_ = h.save(None, draft, "   ", *values)
    assert "Write a short message" in result
    assert services.constitutions.head(1).info.number == 1


def test_bad_import_reports_and_skips_other_outputs(services: Services, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\x00\x01binary")
    out = ConstitutionHandlers(services).import_files(None, [str(bad)], "")
    assert "Nothing was imported" in out[0] and "binary" in out[0]
    assert all(isinstance(o, type(gr.skip())) for o in out[1:])
    assert len(out) == 1 + FULL_OUTPUTS_WITH_PICKER


def test_export_writes_a_downloadable_file(services: Services) -> None:
    h = ConstitutionHandlers(services)
    draft = h.load(None)[1]
    path = Path(h.export(draft, "yaml"))
    assert path.name == "studio-default-v1.yaml" and b"schema_version: 1" in path.read_bytes()


def test_preview_shows_the_draft_against_its_base(services: Services) -> None:
    h = ConstitutionHandlers(services)
    draft = h.load(None)[1]
    values = list(drafts.editor_values(draft))
    values[4] = "A brand new critique request."
    text = h.preview(draft, *values)
    assert "CHANGED" in text and "**A brand new critique request\\.**" in text


def test_paper_import_says_the_lists_are_paired_by_position(services: Services) -> None:
    """Issue 12 point 6: the paper's critique and labelling lists are unrelated; the import
    pairs them by position and must say so."""
    import pytest

    from tests.conftest import PAPER_DIR

    if not PAPER_DIR.is_dir():
        pytest.skip(f"shared paper data not found at {PAPER_DIR}")
    paths = [str(PAPER_DIR / n) for n in ("CritiqueRevisionInstructions.json",
                                           "RLMadisonInstructions.json")]
    out = ConstitutionHandlers(services).import_files(None, paths, "paper")
    assert "Imported" in out[0] and "by position" in out[0]
    detail = services.constitutions.head(services.constitutions.find("paper").id)
    assert "by position" in detail.constitution.description
