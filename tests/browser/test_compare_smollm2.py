"""The Compare tab on the real offline model, in real Chromium (issue 16, "Done when"):
SmolLM2-135M-Instruct as the base policy against the output model of a REAL SFT job trained on
SmolLM2 (two steps through the training entry point), three prompts, short answers, then the
win-rate chart and the side-by-side browser with the models' own words. With
CSTUDIO_SCREENSHOTS=1 it writes docs/screenshots/compare.png from this run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from backend.access import local_admin
from backend.services.engines import EngineConfig
from tests.backend.services.comparison_data import trained_sft_job
from tests.browser.conftest import UI_TIMEOUT, Studio
from tests.browser.journey_helpers import shoot
from tests.browser.test_compare_tab import compare_in_the_tab
from tests.conftest import link_smollm2
from tests.studio.cli.test_compare_smollm2 import PROMPTS, readable

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT = UI_TIMEOUT
RUN_TIMEOUT = 300_000  # SmolLM2 generation and judging on a shared CPU


def test_compare_smollm2_base_with_its_sft_output(studio: Studio, page: Page, tmp_path: Path,
                                                  smollm2_dir: Path) -> None:
    link_smollm2(studio.services.settings.data_dir, smollm2_dir)
    engine = studio.services.engines.configure(EngineConfig(kind="smollm2"),
                                               actor=local_admin("browser-tester"))
    assert engine.info.model == "SmolLM2-135M-Instruct" and not engine.info.is_demo
    job_id = trained_sft_job(studio.services, smollm2_dir, name="smollm2 sft", max_steps=2,
                             batch_size=1, learning_rate=1e-5, max_length=48)
    prompts = tmp_path / "harmless-prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": p}) + "\n" for p in PROMPTS),
                       encoding="utf-8")
    summary = compare_in_the_tab(page, studio.url, job_id, prompts,
                                 base="base · SmolLM2-135M-Instruct", tokens=16,
                                 run_timeout=RUN_TIMEOUT)
    expect(summary).to_contain_text("judge SmolLM2-135M-Instruct")
    expect(summary).to_contain_text("base · SmolLM2-135M-Instruct")
    expect(summary).to_contain_text(f"job:{job_id} sft · smollm2 sft")
    chart = page.locator("#cmp-winrate .js-plotly-plot, #cmp-winrate .plot-container")
    expect(chart.first).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("#cmp-winrate")).to_contain_text("Win rate against the other policies")
    expect(page.locator("#cmp-winrate")).to_contain_text("base · SmolLM2-135M-Instruct")

    # the stored answers are SmolLM2's own words, the trained policy's from the job's model
    stored = studio.services.comparisons.get(1)
    assert Path(stored.policies[1].location).is_relative_to(
        studio.services.settings.data_dir / "jobs" / str(job_id))
    answers = [e for e in studio.services.critique_log.recent(limit=50) if e.kind == "response"]
    assert {e.model for e in answers} == {"SmolLM2-135M-Instruct",
                                          f"job:{job_id} sft · smollm2 sft"}
    assert all(readable(e.output) for e in answers), [e.output for e in answers]

    page.locator("#cmp-browse").click()
    browser = page.locator("#cmp-browser")
    expect(browser).to_contain_text("3 judged pairs", timeout=TIMEOUT)
    expect(browser).to_contain_text(PROMPTS[0])
    expect(browser).to_contain_text(" ".join(answers[0].output.split()[:3]))
    expect(browser).to_contain_text("P(A better)")
    shoot(page, "compare", summary)
