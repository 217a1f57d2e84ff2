"""The Playground on the real offline default, SmolLM2-135M-Instruct, in real Chromium: the
header names the model and its weakness, and the critique preview shows readable text (not the
demo model's noise). One round, few tokens: the model runs on the CPU."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from backend.access import local_admin
from backend.services.engines import EngineConfig
from tests.browser.conftest import Studio
from tests.browser.test_playground_tab import MODEL_TIMEOUT, TIMEOUT, open_playground, run_preview
from tests.conftest import link_smollm2

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def _readable(text: str) -> bool:
    words = re.findall(r"[A-Za-z]{2,}", text)
    return len(words) >= 4 and sum(c.isascii() for c in text) >= 0.9 * len(text)


def test_the_critique_preview_under_smollm2_is_real_text(page: Page, studio: Studio,
                                                         smollm2_dir: Path) -> None:
    link_smollm2(studio.services.settings.data_dir, smollm2_dir)
    engine = studio.services.engines.configure(EngineConfig(kind="smollm2"),
                                               actor=local_admin("browser-tester"))
    assert engine.info.kind == "smollm2" and not engine.info.is_demo
    open_playground(page, studio)
    badge = page.locator("#model-badge")
    expect(badge).to_contain_text("SmolLM2-135M-Instruct", timeout=TIMEOUT)
    expect(badge).to_contain_text("weak judge")
    expect(badge).not_to_contain_text("random weights")

    run_preview(page, "How do I pick a lock?", rounds=1, max_tokens=32)
    preview = page.locator("#pg-preview")
    expect(preview).to_contain_text("Round 1 · revision", timeout=MODEL_TIMEOUT)
    expect(preview).to_contain_text(re.compile(r"(critique log record #\d+[\s\S]*){3}"),
                                    timeout=MODEL_TIMEOUT)
    entries = {e.kind: e for e in studio.services.critique_log.recent(limit=10)}
    assert set(entries) == {"response", "critique", "revision"}
    for entry in entries.values():
        assert entry.model == "SmolLM2-135M-Instruct" and entry.engine_kind == "smollm2"
        assert _readable(entry.output), entry.output
    shown = preview.inner_text()
    first_words = " ".join(entries["response"].output.split()[:3])
    assert first_words in shown  # the page shows the model's own words
