from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import gradio as gr
import pytest

from backend.services.container import Services
from studio import audit_handlers
from studio.audit_handlers import AuditHandlers, Paging
from tests.backend.services.audit_data import head_version, log_chain

XSS = '<img src=x onerror="window.__xss=1"> <script>window.__xss=2</script> [x](javascript:1)'


def _filters(query: str = "", **kw: Any) -> list[Any]:
    values: dict[str, Any] = {"query": query, "constitution": "", "version": "",
                              "principle_key": "", "model": "", "kind": "", "chain": "",
                              "evaluation": "", "since": "", "until": "", "flagged": False}
    values.update(kw)
    return list(values.values())


@pytest.fixture
def h(services: Services) -> AuditHandlers:
    return AuditHandlers(services)


@pytest.fixture
def chain(services: Services) -> list[int]:
    v, k1, _ = head_version(services)
    return log_chain(services, prompt="Pick a lock?", response=XSS,
                     critique="Burglary advice ```fence``` is harmful.", revision="No.",
                     version_id=v, principle_key=k1)


def test_search_pages_forward_and_back(h: AuditHandlers, services: Services,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit_handlers, "PAGE_SIZE", 2)
    v, k1, _ = head_version(services)
    for i in range(2):
        log_chain(services, prompt=f"q{i}", response="r", critique="c", revision="v",
                  version_id=v, principle_key=k1)
    rows, status, paging = h.search(*_filters())
    assert [r[0] for r in rows] == [6, 5] and "6 records match" in status
    rows2, status2, paging2 = h.next_page(paging)
    assert [r[0] for r in rows2] == [4, 3] and "page 2" in status2
    _, _, paging3 = h.next_page(paging2)
    _, last, _ = h.next_page(h.next_page(paging3)[2])
    assert "last page" in last
    back, _, _ = h.prev_page(paging2)
    assert [r[0] for r in back] == [6, 5]
    assert "first page" in h.prev_page(Paging())[1]


def test_bad_input_gives_a_message(h: AuditHandlers, chain: list[int]) -> None:
    rows, status, _ = h.search(*_filters(since="yesterday"))
    assert rows == [] and "must be a date" in status
    _, status, _ = h.search(*_filters(query="\"'--"))
    assert "Nothing to search for" in status
    _, status, _ = h.search(*_filters(query="nomatchword"))
    assert status == "No records match."


def test_open_flag_comment_and_provenance(h: AuditHandlers, chain: list[int]) -> None:
    md, chain_rows, notes, rid = h.open_record(chain[1])
    assert rid == chain[1] and [r[0] for r in chain_rows] == chain
    assert "Principle text of that version" in md and "Prompt exactly as sent" in md
    assert notes == "No flags or comments yet."
    req = gr.Request()
    md, _, notes, cleared = h.flag(chain[1], "suspicious", req)
    assert "flagged" in md and "suspicious" in notes and cleared == ""
    _, _, notes, _ = h.comment(chain[1], "<b>looked</b>", req)
    assert "```\n<b>looked</b>\n```" in notes
    _, _, message, _ = h.flag(chain[1], "", req)
    assert "Not saved" in message and "already flagged" in message
    rows, _, _ = h.search(*_filters(flagged=True))
    assert [r[0] for r in rows] == [chain[1]] and rows[0][5] == "⚑"
    rows, _, _ = h.principle_records(chain[2])
    assert [r[0] for r in rows] == [chain[2], chain[1]]
    assert "no principle" in h.principle_records(chain[0])[1]
    assert "No critique\\-log record with id 999" in h.open_record(999)[0]


def test_untrusted_text_is_fenced_or_escaped(h: AuditHandlers, chain: list[int]) -> None:
    md, _, _, _ = h.open_record(chain[0])
    body = md.split("**Output**\n", 1)[1]
    assert body.startswith("```\n" + XSS + "\n```")
    md, _, _, _ = h.open_record(chain[1])
    assert "````\nBurglary advice ```fence``` is harmful.\n````" in md


def test_export_and_verify(h: AuditHandlers, services: Services, chain: list[int]) -> None:
    _, _, paging = h.search(*_filters(query="burglary"))
    message, path = h.export("case-7", paging, gr.Request())
    assert "Exported **2** records" in message and path is not None
    with zipfile.ZipFile(path) as z:
        assert "case-7/manifest.json" in z.namelist()
    assert Path(path).parent != services.settings.data_dir
    message, path = h.export("../escape", paging, gr.Request())
    assert path is None and "not a valid export name" in message
    assert h.verify().startswith("✅ **Nothing was altered.**")


def test_trace_run_and_dataset_records(h: AuditHandlers, services: Services) -> None:
    assert "No training job with id 5" in h.trace_run(5)
    assert "Type a training dataset id" in h.dataset_records(None)[1]
    rows, status, paging = h.dataset_records(77)
    assert rows == [] and status == "No records match."
    assert paging.filters.training_dataset_id == 77


def test_old_export_copies_are_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os
    import tempfile

    from studio.audit_handlers import drop_old_copies

    monkeypatch.setattr(tempfile, "gettempdir", lambda: str(tmp_path))
    old, new = tmp_path / "cstudio-export-old", tmp_path / "cstudio-export-new"
    for folder in (old, new):
        folder.mkdir()
        (folder / "evidence-x.zip").write_bytes(b"zip")
    os.utime(old, (0, 0))
    drop_old_copies()
    assert not old.exists() and new.exists()
