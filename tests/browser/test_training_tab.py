"""The Training tab in real Chromium: queue an SL-CAI SFT job on the tiny model, watch it
finish through the worker (``accelerate launch`` of the real sft stage), and see its loss
curve; a bad config is refused in the page, naming the field, and queues nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.sync_api import Locator, Page, expect

from backend.jobs.worker import Worker
from db import training_repo
from tests.browser.conftest import UI_TIMEOUT, Studio
from tests.browser.journey_helpers import set_number

pytestmark = pytest.mark.browser

TIMEOUT = UI_TIMEOUT
JOB_TIMEOUT = 240_000  # ms: accelerate launch, TRL imports and 4 SFT steps on a shared CPU


@pytest.fixture
def training_studio(studio: Studio) -> Iterator[Studio]:
    """The studio with an SL-CAI dataset in its store and a job worker running beside it (as
    ``cstudio serve`` runs one)."""
    services = studio.services
    with services.db.write() as s:
        row = training_repo.create_dataset(
            s, kind="sl_cai", name="browser sl-cai", job_id=None, constitution_version_id=None,
            model="test", config={}, source="test", source_sha256="0" * 64, created_by="t")
        assert row.id is not None
        training_repo.insert_sl_cai_samples(s, dataset_id=row.id, rows=[
            {"position": i, "prompt": f"How do I stay safe cycling at night {i}?",
             "response": "ride fast", "revision": f"Wear lights and bright clothes {i}.",
             "chain_id": f"c{i}", "record_ids": [], "principle_keys": ["k"],
             "content_hash": f"{i:064d}"} for i in range(8)])
    settings = services.settings.model_copy(update={"job_heartbeat_s": 0.5})
    worker = Worker(settings, services.db)
    worker.start_thread()
    yield studio
    worker.stop(timeout=60)


def field(page: Page, kind: str, name: str) -> Locator:
    return page.locator(f"#tr-{kind}-{name} input, #tr-{kind}-{name} textarea").first


def set_value(page: Page, kind: str, name: str, value: object) -> None:
    """Fill a form field and leave it (Tab), so the value reaches the server on launch."""
    set_number(page, f"tr-{kind}-{name}", value)


def open_sft_form(page: Page, studio: Studio) -> None:
    page.goto(studio.url)
    page.get_by_role("tab", name="Training").click()
    page.locator("#tr-kind label").filter(has_text="SL-CAI SFT").click()
    form = page.locator("#tr-form-sft").first
    expect(form).to_be_visible(timeout=TIMEOUT)
    # the SL-CAI dataset made earlier is picked for the required input
    expect(field(page, "sft", "sl_cai_dataset_id")).to_have_value(
        re.compile(r"browser sl-cai"), timeout=TIMEOUT)
    form.get_by_role("button", name="Training settings").click()


@pytest.mark.slow
def test_queue_an_sft_job_watch_it_finish_and_see_its_curve(page: Page,
                                                           training_studio: Studio) -> None:
    services = training_studio.services
    open_sft_form(page, training_studio)
    set_value(page, "sft", "name", "browser sft")
    for name, value in (("max_steps", 4), ("save_steps", 2), ("batch_size", 2),
                        ("max_length", 64)):
        set_value(page, "sft", name, value)
    page.locator("#tr-sft-launch").click()
    expect(page.locator("#tr-launch-result")).to_contain_text("Queued job #1", timeout=TIMEOUT)
    (job,), _ = services.jobs.list_jobs()
    assert (job.kind, job.name, job.config["max_steps"]) == ("sft", "browser sft", 4)

    status = page.locator("#tr-status")
    expect(status).to_contain_text("Job #1", timeout=TIMEOUT)
    expect(status).to_contain_text("succeeded", timeout=JOB_TIMEOUT)
    done = services.jobs.get(job.id)
    assert done.status == "succeeded", done.error
    loss = services.jobs.metrics(job.id).series["loss"]
    assert loss.steps and loss.steps[-1] == 4

    plot = page.locator("#tr-curves .js-plotly-plot").first
    expect(plot).to_be_visible(timeout=TIMEOUT)
    expect(plot).to_contain_text("loss")
    expect(plot.locator(".scatterlayer .trace").first).to_be_attached()
    expect(page.locator("#tr-queue div[role=row]").filter(has_text="succeeded")).to_have_count(
        1, timeout=TIMEOUT)
    expect(page.locator("#tr-log textarea")).to_have_value(re.compile(r"exit code 0"),
                                                          timeout=TIMEOUT)


def test_a_bad_config_is_refused_in_the_page_naming_the_field(page: Page,
                                                              training_studio: Studio) -> None:
    open_sft_form(page, training_studio)
    set_value(page, "sft", "max_steps", -3)
    form = page.locator("#tr-form-sft").first
    form.get_by_role("button", name="Devices and distribution").click()
    set_value(page, "sft", "device", "cuda:7")
    page.locator("#tr-sft-launch").click()
    result = page.locator("#tr-launch-result")
    expect(result).to_contain_text("Not queued", timeout=TIMEOUT)
    expect(result).to_contain_text("max_steps: must be a positive integer")
    expect(result).to_contain_text("device: cuda:7 does not exist")
    assert training_studio.services.jobs.list_jobs() == ([], 0)
