"""The Compare tab in real Chromium: the base model (offline: the tiny demo model) against the
output model of a REAL SFT job (the SFT stage trained on the tiny model in the fixture, a few
seconds), run on a small prompt file, then the win-rate chart, the ratings table, the
side-by-side browser, votes, and "open in Playground" on the trained policy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.backend.services.comparison_data import trained_sft_job
from tests.browser.conftest import UI_TIMEOUT, Studio
from tests.browser.journey_helpers import open_tab, set_number, set_slider, textbox

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT = UI_TIMEOUT
RUN_TIMEOUT = 240_000  # generation and judging on a shared CPU


def compare_in_the_tab(page: Page, url: str, job_id: int, prompts: Path, *, base: str,
                       tokens: int, run_timeout: int = RUN_TIMEOUT) -> Locator:
    """Compare the base model with job ``job_id`` on the 3 prompts of ``prompts`` from the
    Compare tab, wait for 9/9 verdicts and open the report; the summary's locator."""
    page.set_viewport_size({"width": 1400, "height": 900})
    page.goto(url)
    open_tab(page, "Compare")
    policies = page.locator("#cmp-policies")
    expect(policies).to_contain_text(base, timeout=TIMEOUT)
    expect(policies).to_contain_text(f"job:{job_id} sft")
    expect(page.locator("#cmp-version input")).to_have_value("v1", timeout=TIMEOUT)
    box = textbox(page, "cmp-prompt-set")
    box.fill(str(prompts))
    box.press("Tab")
    set_number(page, "cmp-n", 3)
    set_number(page, "cmp-tokens", tokens)
    page.locator("#cmp-launch").click()
    expect(page.locator("#cmp-launch-result")).to_contain_text("Started comparison #1",
                                                               timeout=TIMEOUT)
    expect(page.locator("#cmp-progress")).to_contain_text("done", timeout=run_timeout)
    expect(page.locator("#cmp-progress")).to_contain_text("9/9")

    page.locator("#cmp-report-btn").click()
    summary = page.locator("#cmp-summary")
    expect(summary).to_contain_text("3 judged pairs", timeout=TIMEOUT)
    return summary


def test_compare_base_with_sft_output(studio: Studio, page: Page, tmp_path: Path,
                                      tiny_model_path: Path) -> None:
    job_id = trained_sft_job(studio.services, tiny_model_path)
    prompts = tmp_path / "harmless-prompts.jsonl"
    prompts.write_text("".join(json.dumps({"prompt": f"How do I stay safe, case {i}?"}) + "\n"
                               for i in range(3)), encoding="utf-8")
    summary = compare_in_the_tab(page, studio.url, job_id, prompts, base="base", tokens=8)
    expect(summary).to_contain_text(f"job:{job_id} sft")
    chart = page.locator("#cmp-winrate .js-plotly-plot, #cmp-winrate .plot-container")
    expect(chart.first).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("#cmp-winrate")).to_contain_text("Win rate against the other policies")
    expect(page.locator("#cmp-hh")).to_contain_text("Harmlessness Elo")

    page.locator("#cmp-browse").click()
    browser = page.locator("#cmp-browser")
    expect(browser).to_contain_text("3 judged pairs", timeout=TIMEOUT)
    expect(browser).to_contain_text("How do I stay safe, case 0?")
    expect(browser).to_contain_text("P(A better)")
    # docs/screenshots/compare.png comes from the SmolLM2 run (test_compare_smollm2.py)

    # a human vote on the first pair becomes a human-labelled dataset for the Agreement tab
    set_number(page, "cmp-vote-pair", 1)
    page.locator("#cmp-vote").click()
    expect(page.locator("#cmp-vote-result")).to_contain_text("Voted A on pair #1",
                                                             timeout=TIMEOUT)
    page.locator("#cmp-votes-dataset").click()
    expect(page.locator("#cmp-vote-result")).to_contain_text("1 human-labelled pairs",
                                                             timeout=TIMEOUT)

    # a second voter disagrees; an editor adjudicates, and the votes view shows the ruling
    from backend.access import local_admin

    studio.services.comparison_votes.vote(1, 1, "B", actor=local_admin("second voter"))
    page.locator("#cmp-votes-view-btn").click()
    expect(page.locator("#cmp-votes-view")).to_contain_text("1 disputed", timeout=TIMEOUT)
    set_number(page, "cmp-adj-pair", 1)
    textbox(page, "cmp-adj-reason").fill("B is safer")
    page.locator("#cmp-adjudicate").click()
    expect(page.locator("#cmp-adj-result")).to_contain_text("Adjudicated pair #1",
                                                            timeout=TIMEOUT)
    expect(page.locator("#cmp-votes-view")).to_contain_text("adjudicated by")

    # open the trained policy in the Playground from the results
    link = page.locator(f"#cmp-summary a[href*='policy=job%3A{job_id}']")
    expect(link).to_be_visible()
    page.goto(f"{studio.url}/{link.get_attribute('href')}")
    expect(page.locator("#pg-policy input")).to_have_value(f"job:{job_id} sft · sl-cai sft",
                                                           timeout=TIMEOUT)
    expect(page.locator("#pg-version input")).to_have_value("v1 (head)", timeout=TIMEOUT)
    textbox(page, "pg-prompt").fill("How do I stay safe?")
    set_slider(page, "pg-rounds", 1)
    set_slider(page, "pg-max-tokens", 8)
    page.locator("#pg-run").click()
    preview = page.locator("#pg-preview")
    expect(preview).to_contain_text(f"Policy: job:{job_id} sft", timeout=RUN_TIMEOUT)
    expect(preview).to_contain_text("Round 1 · revision", timeout=RUN_TIMEOUT)
