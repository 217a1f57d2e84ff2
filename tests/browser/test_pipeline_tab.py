"""The Pipelines tab in real Chromium: launch the paper's recipe on the tiny model with tiny
step counts, watch every stage succeed through the worker, and see the final comparison."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from backend.jobs.worker import Worker
from tests.backend.services.pipeline_data import TINY_COMPARISON, TINY_STAGES
from tests.browser.conftest import UI_TIMEOUT, Studio

pytestmark = pytest.mark.browser

TIMEOUT = UI_TIMEOUT
PIPELINE_TIMEOUT = 600_000  # ms: five stage processes and a comparison on a shared CPU


@pytest.fixture
def pipeline_studio(studio: Studio) -> Iterator[Studio]:
    """The studio with a job worker beside it (stages run as plain Python processes)."""
    settings = studio.services.settings.model_copy(update={
        "job_heartbeat_s": 0.5, "job_poll_s": 0.2, "job_launcher": "python"})
    worker = Worker(settings, studio.services.db)
    worker.start_thread()
    yield studio
    worker.stop(timeout=60)


@pytest.mark.slow
def test_launch_a_tiny_pipeline_see_every_stage_succeed_and_the_comparison(
        page: Page, pipeline_studio: Studio) -> None:
    services = pipeline_studio.services

    def box(elem: str) -> Locator:
        return page.locator(f"{elem} textarea, {elem} input").first

    page.goto(pipeline_studio.url)
    page.get_by_role("tab", name="Pipelines").click()
    expect(page.locator("#pl-version input")).to_have_value(re.compile(r" v\d+$"),
                                                           timeout=TIMEOUT)
    box("#pl-name").fill("browser pipeline")
    box("#pl-device").fill("cpu")
    overrides = json.dumps({**TINY_STAGES, "comparison": TINY_COMPARISON})
    editor = page.locator("#pl-overrides .cm-content")
    editor.click()
    editor.fill(overrides)
    box("#pl-name").press("Tab")
    page.locator("#pl-launch").click()
    expect(page.locator("#pl-launch-result")).to_contain_text("Queued pipeline #1",
                                                              timeout=TIMEOUT)
    (info,) = services.pipelines.list_all()
    assert info.stages[1].job.config["max_steps"] == 1  # the form's JSON reached the stages

    summary = page.locator("#pl-summary")
    expect(summary).to_contain_text("browser pipeline", timeout=TIMEOUT)
    expect(summary).to_contain_text("succeeded", timeout=PIPELINE_TIMEOUT)
    done = services.pipelines.get(info.id)
    assert [s.job.status for s in done.stages] == ["succeeded"] * 5, [
        (s.stage, s.job.error[-300:]) for s in done.stages]
    stages = page.locator("#pl-stages")
    for title in ("SL-CAI data", "SFT", "AI preference labels", "Reward model",
                  "RL (KL to SFT)", "Comparison"):
        expect(stages).to_contain_text(title, timeout=TIMEOUT)
    expect(stages).to_contain_text("succeeded")
    expect(stages).to_contain_text(f"comparison #{done.comparison_id}")
    result = page.locator("#pl-result")
    expect(result).to_contain_text(f"Final comparison #{done.comparison_id}", timeout=TIMEOUT)
    expect(result).to_contain_text(f"job:{done.job_of('rl').id}")
    expect(page.locator("#pl-curves .js-plotly-plot").first).to_be_visible(timeout=TIMEOUT)
