"""The Agreement tab in real Chromium: import a dataset, run an evaluation, read its report,
browse disagreements, compare two runs, and refuse a bad upload.

The studio runs on the tiny demo model (random weights, CPU), handed to the studio's
EngineManager before the page loads, so no test downloads a model. Runs judge a seeded sample of
24 pairs of the paper's 438 HHH evaluations, which the tiny model does in a few seconds.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

from backend.engines.base import Engine
from tests.browser.conftest import UI_TIMEOUT, Studio
from tests.browser.journey_helpers import set_number
from tests.conftest import PAPER_DIR

pytestmark = pytest.mark.browser

TIMEOUT = UI_TIMEOUT
MODEL_TIMEOUT = 60_000  # ms, for reports (bootstrap intervals) and comparisons
RUN_TIMEOUT = 120_000  # ms, for a run of the tiny model on CPU (the timer polls every 2 s)
HHH_FILE = PAPER_DIR / "438HHHEvaluations.jsonl"
HHH_FORMAT = "CAI paper: 438 HHH evaluations"
HH_FORMAT = "HH-RLHF (chosen/rejected dialogues)"
SAMPLE = 24


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture
def tiny_studio(studio: Studio, tiny_engine: Engine) -> Studio:
    """The studio with the tiny engine adopted (resolved lazily, so before ``page.goto``)."""
    if not HHH_FILE.is_file():
        pytest.skip(f"shared paper data not found at {HHH_FILE}")
    studio.services.engines.use(tiny_engine)
    return studio


# --- helpers --------------------------------------------------------------------------------


def dropdown(page: Page, elem_id: str) -> Locator:
    return page.locator(f"#{elem_id} input").first


def choose(page: Page, elem_id: str, option_text: str) -> None:
    """Pick the option of a gr.Dropdown whose label contains ``option_text``."""
    dropdown(page, elem_id).click()
    option = page.locator("ul[role=listbox] li, [role=option]").filter(has_text=option_text)
    option.first.click()
    expect(dropdown(page, elem_id)).to_have_value(re.compile(re.escape(option_text)),
                                                  timeout=TIMEOUT)


def open_accordion(page: Page, title: str) -> None:
    page.get_by_role("button", name=title).first.click()


def open_agreement(page: Page, studio: Studio) -> None:
    """Load the studio, open the Agreement tab and wait until a constitution version is set."""
    page.goto(studio.url)
    page.get_by_role("tab", name="Agreement").click()
    expect(dropdown(page, "ag-version")).to_have_value(re.compile(r"^v\d"), timeout=TIMEOUT)


def import_through_ui(page: Page, path: Path, format_label: str) -> Locator:
    """Upload ``path`` in the datasets accordion and import it as ``format_label``."""
    open_accordion(page, "Datasets of human-labelled pairs")
    page.locator("#ag-upload input[type=file]").set_input_files(str(path))
    # the upload is done once the file's name is listed in place of the drop zone (Gradio
    # shows the stem and the extension in separate elements, which may wrap apart)
    shown = re.compile(re.escape(path.stem) + r"\s*" + re.escape(path.suffix))
    expect(page.locator("#ag-upload")).to_contain_text(shown, timeout=TIMEOUT)
    choose(page, "ag-format", format_label)
    page.locator("#ag-import").click()
    return page.locator("#ag-import-result")


def launch_run(page: Page, studio: Studio) -> int:
    """Start a run on the selected dataset and version with a sample of SAMPLE; its id."""
    expect(dropdown(page, "ag-dataset")).not_to_have_value("", timeout=TIMEOUT)
    expect(dropdown(page, "ag-version")).to_have_value(re.compile(r"^v\d"), timeout=TIMEOUT)
    set_number(page, "ag-sample", SAMPLE)
    before = {r.id for r in studio.services.evaluations.list_all()}
    page.locator("#ag-launch").click()
    # The message of an earlier launch may still be on screen: wait for this run's id.
    run_id = max(before, default=0) + 1
    result = page.locator("#ag-launch-result")
    expect(result).to_contain_text(f"Started run #{run_id} on {SAMPLE} pairs", timeout=TIMEOUT)
    assert {r.id for r in studio.services.evaluations.list_all()} - before == {run_id}
    return run_id


def wait_until_done(page: Page, run_id: int) -> None:
    """Wait until the progress line (refreshed by the 2 s timer) shows the run done."""
    expect(page.locator("#ag-progress")).to_contain_text(
        re.compile(rf"Run #{run_id}: done\b.*\b{SAMPLE}/{SAMPLE}\b"), timeout=RUN_TIMEOUT)


def import_hhh(page: Page, studio: Studio) -> None:
    result = import_through_ui(page, HHH_FILE, HHH_FORMAT)
    expect(result).to_contain_text("Imported", timeout=TIMEOUT)
    expect(result).to_contain_text("438 pairs")
    (info,) = studio.services.datasets.list_all()
    assert info.item_count == 438
    # the import selects the new dataset for the next run
    expect(dropdown(page, "ag-dataset")).to_have_value(f"{info.name} (438)", timeout=TIMEOUT)
    expect(page.locator("#ag-datasets")).to_contain_text(info.name)


def browse(page: Page, *, only_disagreements: bool) -> Locator:
    checkbox = page.locator("#ag-filter-wrong input[type=checkbox]")
    checkbox.set_checked(only_disagreements)
    expect(checkbox).to_be_checked(checked=only_disagreements)
    page.locator("#ag-browse").click()
    return page.locator("#ag-browser")


# --- tests ----------------------------------------------------------------------------------


def test_run_report_and_disagreement_browser(page: Page, tiny_studio: Studio) -> None:
    services = tiny_studio.services
    open_agreement(page, tiny_studio)
    import_hhh(page, tiny_studio)

    run_id = launch_run(page, tiny_studio)
    wait_until_done(page, run_id)
    info = services.evaluations.get(run_id)
    assert (info.status, info.done_count, info.total_count) == ("done", SAMPLE, SAMPLE)

    page.locator("#ag-report-btn").click()
    metrics_md = page.locator("#ag-metrics")
    expect(metrics_md).to_contain_text(f"{SAMPLE} items", timeout=MODEL_TIMEOUT)
    for name in ("Accuracy vs human", "Cohen", "Log loss", "Brier", "calibration",
                 "Position consistency"):
        expect(metrics_md).to_contain_text(name)
    for elem_id in ("ag-reliability", "ag-histogram", "ag-principles"):
        plot = page.locator(f"#{elem_id} .js-plotly-plot").first
        expect(plot).to_be_visible(timeout=TIMEOUT)
        expect(plot.locator("svg.main-svg").first).to_be_attached()

    browser = browse(page, only_disagreements=False)
    expect(browser).to_contain_text(f"{SAMPLE} items match", timeout=TIMEOUT)
    for text in ("Prompt", "Response A", "Response B", "human:"):
        expect(browser).to_contain_text(text)
    assert len(re.findall(r"Item \d+", browser.inner_text())) == 10  # one page

    rows, total = services.agreement.disagreements(run_id, limit=1000)
    arrays = services.agreement.arrays(run_id)
    expected = sum((p > 0.5) != (h == 1.0) for p, h in zip(arrays.p_a, arrays.human,
                                                            strict=True))
    assert total == expected == len(rows)
    print(f"run #{run_id}: {total} of {SAMPLE} verdicts disagree with the human label")
    assert total < SAMPLE, "every verdict disagrees: the filtered view would look unchanged"
    browser = browse(page, only_disagreements=True)
    expect(browser).to_contain_text(re.compile(rf"(?<!\d){total} items match"),
                                    timeout=TIMEOUT)
    shown = [int(i) for i in re.findall(r"Item (\d+)", browser.inner_text())]
    assert shown == [r.item_id for r in rows[:10]]  # the first page, most confident first


def test_two_runs_with_the_same_seed_compare_without_flips(page: Page,
                                                           tiny_studio: Studio) -> None:
    services = tiny_studio.services
    open_agreement(page, tiny_studio)
    import_hhh(page, tiny_studio)
    first = launch_run(page, tiny_studio)
    wait_until_done(page, first)
    second = launch_run(page, tiny_studio)
    wait_until_done(page, second)
    a, b = (services.evaluations.get(i) for i in (first, second))
    assert a.config == b.config and a.dataset_id == b.dataset_id  # same sample, same seed

    open_accordion(page, "Compare two runs")
    choose(page, "ag-run-a", f"#{first} ")
    choose(page, "ag-run-b", f"#{second} ")
    page.locator("#ag-compare").click()
    comparison = page.locator("#ag-comparison")
    expect(comparison).to_contain_text(f"{SAMPLE} shared items", timeout=MODEL_TIMEOUT)
    expect(comparison).to_contain_text("Flipped verdicts: 0")
    expect(comparison.locator("strong").filter(has_text=re.compile(r"^0$")).first).to_be_visible()
    assert services.agreement.compare(first, second).flips == ()


def test_a_garbage_file_imports_nothing(page: Page, tiny_studio: Studio,
                                        tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(bytes(range(256)) * 8 + b"\x00\xff\xfe garbage \x89PNG\r\n")
    open_agreement(page, tiny_studio)
    result = import_through_ui(page, bad, HH_FORMAT)
    expect(result).to_contain_text("Nothing was imported", timeout=TIMEOUT)
    expect(result).to_contain_text("binary file")
    assert tiny_studio.services.datasets.list_all() == []
    expect(page.locator("#ag-datasets div[role=row]")).to_have_count(0)
    expect(dropdown(page, "ag-dataset")).to_have_value("")

