"""Everyday use (issue 14) in real Chromium: a link opens its record on the Audit tab, the
disagreement browser shows A and B side by side with long text wrapped, the word-level diff
renders (struck/bold, no raw markup), pickers follow a version saved after the page loaded,
switching constitutions with an unsaved draft warns instead of dropping it, a failed job's link
says why first, and a long preview leaves other tabs working and can be stopped."""

from __future__ import annotations

import dataclasses
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from backend.access import local_admin
from backend.cai.default_constitution import DEFAULT_NAME
from backend.engines.base import GenerationParams, Prompt
from backend.engines.scripted import ScriptedEngine
from tests.backend.services.audit_data import head_version, log_chain
from tests.browser.conftest import UI_TIMEOUT, Studio
from tests.browser.journey_helpers import dropdown
from tests.browser.test_constitution_tab import (
    open_studio,
    pick_principle,
    textbox,
    type_text,
)
from tests.browser.test_playground_tab import open_playground, run_preview
from tests.browser.test_xss_all_tabs import IMG, _assert_inert, _seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT = UI_TIMEOUT
LONG = " ".join(["unbroken-looking-but-spaced words"] * 120) + " " + "x" * 400


def _clipped(page: Page, area: str) -> list[str]:
    """Elements under ``area`` whose content is wider than they are (scrolls or is cut)."""
    found: list[str] = page.evaluate("""(area) => [...document.querySelectorAll(area + ' *')]
        .filter(e => e.scrollWidth > e.clientWidth + 2
                     && getComputedStyle(e).overflowX !== 'visible')
        .map(e => e.tagName)""", area)
    return found


def test_links_side_by_side_wrapping_and_word_diff(studio: Studio, page: Page) -> None:
    _seed(studio.services)
    v, key, _ = head_version(studio.services)
    long_ids = log_chain(studio.services, prompt=LONG, response=LONG, critique=LONG,
                         revision=LONG, version_id=v, principle_key=key)
    page.set_viewport_size({"width": 1100, "height": 900})
    # a record link: the Audit tab opens with it
    page.goto(f"{studio.url}/?record={long_ids[1]}")
    expect(page.locator("#audit-detail")).to_contain_text(f"Record {long_ids[1]}",
                                                          timeout=TIMEOUT)
    expect(page.get_by_role("tab", name="Audit")).to_have_attribute("aria-selected", "true")
    expect(page.locator("#audit-results")).to_contain_text("unbroken")  # newest listed
    assert _clipped(page, "#audit-detail") == []  # exact texts wrap too


    page.get_by_role("tab", name="Agreement").click()
    expect(dropdown(page, "ag-run")).to_have_value("#1 hostile run", timeout=TIMEOUT)
    page.locator("#ag-browse").click()
    table = page.locator("#ag-browser table").first
    expect(table).to_be_visible(timeout=TIMEOUT)
    expect(table.locator("th")).to_have_text(["Response A", "Response B"])
    cells = table.locator("td")
    expect(cells).to_have_count(2)
    texts = sorted(cells.all_inner_texts())  # the import may show either side first
    assert texts[0].startswith(f"A zebra {IMG}") and texts[1].startswith("B <script>")
    assert _clipped(page, "#ag-browser") == []
    links = page.locator("#ag-browser a[href*='record=']")
    expect(links.first).to_be_visible()
    _assert_inert(page)

    page.get_by_role("tab", name="Constitution").click()
    page.get_by_role("button", name="Show diff").click()
    diff = page.locator("#diff-view")
    expect(diff).to_contain_text(f"Title {IMG}", timeout=TIMEOUT)
    expect(diff.locator("del, s").first).to_be_visible()  # removed words struck through
    expect(diff.locator("strong", has_text="zebra").first).to_be_visible()  # added in bold
    assert diff.locator("pre").count() == 0  # prose, not code blocks
    _assert_inert(page)


def test_pickers_follow_a_version_saved_after_loading(studio: Studio, page: Page) -> None:
    open_studio(page, studio)
    page.get_by_role("tab", name="Agreement").click()
    expect(dropdown(page, "ag-version")).to_have_value("v1", timeout=TIMEOUT)
    (summary,) = studio.services.constitutions.list_all()
    head = studio.services.constitutions.head(summary.id)
    first = dataclasses.replace(head.content.principles[0], title="Saved elsewhere")
    studio.services.constitutions.save(
        summary.id, head.info.id, dataclasses.replace(
            head.content, principles=(first, *head.content.principles[1:])),
        "from another tab", actor=local_admin("other"))
    page.get_by_role("tab", name="Constitution").click()
    page.get_by_role("tab", name="Agreement").click()
    expect(dropdown(page, "ag-version")).to_have_value("v2", timeout=TIMEOUT)


def test_switching_with_an_unsaved_draft_warns(studio: Studio, page: Page) -> None:
    (summary,) = studio.services.constitutions.list_all()
    content = studio.services.constitutions.head(summary.id).content
    studio.services.constitutions.create("Zeta copy", "", content, actor=local_admin("x"),
                                         message="copy")
    open_studio(page, studio)
    type_text(textbox(page, "principle-title"), "Typed, not saved")
    expect(page.locator("#draft-status")).to_contain_text("Unsaved changes", timeout=TIMEOUT)
    dropdown(page, "constitution-picker").click()  # pick the other one
    page.locator("ul[role=listbox] li, [role=option]").filter(has_text="Zeta copy").first.click()
    expect(page.locator("#draft-status")).to_contain_text("unsaved changes to",
                                                          timeout=TIMEOUT)
    expect(dropdown(page, "constitution-picker")).to_have_value(re.compile(summary.name))
    expect(textbox(page, "principle-title")).to_have_value("Typed, not saved")


def test_a_failed_job_link_says_why_first(studio: Studio, page: Page) -> None:
    from db import job_repo
    from db.base_models import utcnow
    from tests.backend.services.test_jobs import sft_config, sl_cai_dataset
    from tests.studio.test_training_everyday import TRACEBACK

    services = studio.services
    job = services.jobs.create("sft", sft_config(sl_cai_dataset(services)),
                               actor=local_admin("op"), name="will fail")
    with services.db.write() as s:
        job_repo.update_job(s, job_id=job.id, status="failed", exit_code=1, error=TRACEBACK,
                            finished_at=utcnow())
    page.goto(f"{studio.url}/?job={job.id}")  # a job link opens the Training tab on it
    expect(page.get_by_role("tab", name="Training")).to_have_attribute("aria-selected", "true",
                                                                      timeout=TIMEOUT)
    status = page.locator("#tr-status")
    expect(status).to_contain_text("Why it failed: OSError: We couldn't connect",
                                   timeout=TIMEOUT)
    expect(status).not_to_contain_text("Traceback")
    # the buttons follow the status line (one more round trip): a finished job cannot be
    # cancelled, a failed one can be resumed
    expect(page.locator("#tr-resume")).to_be_enabled(timeout=TIMEOUT)
    expect(page.locator("#tr-cancel")).to_be_disabled(timeout=TIMEOUT)
    page.get_by_role("button", name="Error details").click()
    expect(page.locator("#tr-error textarea")).to_have_value(re.compile("Traceback"),
                                                             timeout=TIMEOUT)


class EndlessEngine(ScriptedEngine):
    """Streams a word every 50 ms until it is stopped; ``closed`` is set when the stream ends."""

    def __init__(self) -> None:
        super().__init__()
        self.closed = threading.Event()

    def stream(self, prompt: Prompt, params: GenerationParams) -> Iterator[str]:
        try:
            for _ in range(20_000):
                time.sleep(0.05)
                yield "word "
        finally:
            self.closed.set()


def test_a_long_preview_leaves_other_tabs_working_and_can_be_stopped(
        studio: Studio, page: Page) -> None:
    engine = EndlessEngine()
    studio.services.engines.use(engine)
    open_playground(page, studio)
    run_preview(page, "hello", rounds=8, max_tokens=64)
    expect(page.locator("#pg-preview")).to_contain_text("word word", timeout=TIMEOUT)

    page.get_by_role("tab", name="Constitution").click()  # meanwhile, elsewhere
    page.locator("#diff-btn").click()
    expect(page.locator("#diff-view")).to_contain_text("No differences", timeout=TIMEOUT)
    assert not engine.closed.is_set()  # the preview was still streaming

    page.get_by_role("tab", name="Playground").click()
    stop = page.locator("button#pg-stop")
    expect(stop).to_be_visible(timeout=TIMEOUT)
    stop.dispatch_event("click")  # the streaming text keeps the layout moving
    assert engine.closed.wait(timeout=15), "Stop did not end the preview's stream"


# --- point 4: a result appears beside (or right below) the button that caused it ---------------

NEAR_PX = 150


def assert_beside(button: Locator, result: Locator) -> None:
    """The result starts right of the button on its row, or at most NEAR_PX below its bottom.
    Both boxes are read in one script (a refresh that follows a click can move the page between
    two reads), and again for up to 3 s while the layout settles."""
    measure = ("(el, other) => [el, other].map(e => { const r = e.getBoundingClientRect(); "
               "return {x: r.x, y: r.y, width: r.width, height: r.height}; })")
    for _ in range(10):
        b, r = button.evaluate(measure, result.element_handle())
        below = r["y"] - (b["y"] + b["height"])
        on_row = r["x"] >= b["x"] + b["width"] and r["y"] < b["y"] + b["height"] \
            and r["y"] + r["height"] > b["y"]
        if on_row or -2 <= below <= NEAR_PX:
            return
        time.sleep(0.3)
    raise AssertionError(f"button {b}, result {r} ({below:.0f} px below)")


def test_results_appear_beside_their_buttons(studio: Studio, page: Page,
                                             tmp_path: Path) -> None:
    open_studio(page, studio)
    pick_principle(page, studio, 2)
    type_text(textbox(page, "principle-title"), "Everyday: a title changed in the draft")
    expect(page.locator("#draft-status")).to_contain_text("Unsaved changes", timeout=TIMEOUT)
    button = page.locator("#preview-btn")
    button.click()
    preview = page.locator("#preview-view")
    expect(preview).to_contain_text("your draft", timeout=TIMEOUT)
    assert_beside(button, preview)

    constitution = studio.services.constitutions.find(DEFAULT_NAME)
    head = studio.services.constitutions.head(constitution.id)
    exported = studio.services.constitution_io.export(head.info.id, "yaml")
    path = tmp_path / exported.filename
    path.write_bytes(exported.data)
    page.get_by_role("button", name="Import, export, copy").first.click()
    page.locator("#import-files input[type=file]").set_input_files(str(path))
    expect(page.locator("#import-files")).to_contain_text(path.stem, timeout=TIMEOUT)
    type_text(textbox(page, "import-name"), "Everyday import")
    button = page.locator("#import-btn")
    button.click()
    result = page.locator("#import-result")
    expect(result).to_contain_text("Imported Everyday import", timeout=TIMEOUT)
    assert_beside(button, result)
