"""Issue 14 point 1 in Chromium: a first run without the shared data (no ../shared). The
Playground's demo prompts come from the built-in prompt set, and the Training tab queues an
SL-CAI data job with the default prompt set."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from backend.services import container
from backend.services.container import start
from backend.settings import Settings
from studio.app import build_app, launch
from tests.browser.conftest import Studio, _free_port

pytestmark = [pytest.mark.browser, pytest.mark.slow]
TIMEOUT = 20_000


@pytest.fixture
def bare_studio(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Studio]:
    monkeypatch.setattr(container, "default_prompt_set_path", lambda: None)
    monkeypatch.delenv("CSTUDIO_PROMPT_SET_PATH", raising=False)
    port = _free_port()
    settings = Settings(data_dir=tmp_path / "data", user="newcomer", port=port,
                        database_url=None, prompt_set_path=None, embedded_worker=False,
                        engine="tiny")
    services = start(settings)
    demo = build_app(settings, services)
    launch(demo, settings, block=False, services=services)
    try:
        yield Studio(url=f"http://127.0.0.1:{port}", services=services)
    finally:
        demo.close()
        services.close()


def test_demo_prompts_and_the_default_prompt_set_work_without_shared_data(
        bare_studio: Studio, page: Page) -> None:
    page.goto(bare_studio.url)
    page.get_by_role("tab", name="Playground").click()
    picker = page.locator("#pg-prompt-set")
    expect(picker).to_be_visible(timeout=TIMEOUT)
    picker.locator("input").click(timeout=90_000)  # once the page load is done
    options = page.get_by_role("option")
    expect(options.first).to_be_visible(timeout=TIMEOUT)
    assert options.count() >= 60
    page.get_by_role("tab", name="Training").click()
    page.locator("#tr-sl_cai_data-launch").click()
    expect(page.locator("#tr-launch-result")).to_contain_text("Queued job", timeout=TIMEOUT)
