"""The whole journey in real Chromium, on the tiny demo model, checked on screen and in the
database at every step:

fresh start → edit a principle and save v2 (Constitution) → a critique → revision preview and
an A/B verdict under the edited principle (Playground) → a 50-pair agreement run on the paper's
HHH evaluations (Agreement) → an SL-CAI data job on v2, then SL-CAI SFT of the tiny model on
its dataset, both run by a worker (Training) → one of the data job's critiques found by filters
and opened, with the edited principle's text (Audit).

The same journey runs twice: on the paper's data from ../shared (skipped when absent), and as a
newcomer without ../shared (issue 14 "Done when"): the built-in prompt set feeds the Playground's
demo prompts and the SL-CAI data job, and the agreement run is on a small HH-RLHF pairs file
the test writes itself, imported through the Agreement tab. Neither may show a traceback.

With CSTUDIO_SCREENSHOTS=1 the shared-data run also writes one screenshot per tab to
docs/screenshots/<tab>.png (1400×900 viewport, overwritten on each run) for
docs/user-guide.md; without it the tree is left alone.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from backend.cai.constitution import Principle
from backend.cai.default_constitution import DEFAULT_NAME
from backend.cai.sampling import derived_seed, round_principle
from backend.engines.base import Engine
from backend.jobs.worker import Worker
from backend.services import container
from db import training_repo
from tests.browser.conftest import Studio
from tests.browser.journey_helpers import (
    TIMEOUT,
    VIEWPORT,
    choose,
    dropdown,
    open_tab,
    set_number,
    set_slider,
    shoot,
    textbox,
    type_text,
)
from tests.conftest import PAPER_DIR

pytestmark = [pytest.mark.browser, pytest.mark.slow]

MODEL_TIMEOUT = 60_000  # ms, for what the tiny model computes in the page (shared CPU)
RUN_TIMEOUT = 240_000  # ms, for 50 pairs in both orders (the progress timer polls every 2 s)
JOB_TIMEOUT = 300_000  # ms: the worker starts the stage process (torch import, tiny model)
HHH_FILE = PAPER_DIR / "438HHHEvaluations.jsonl"
HHH_FORMAT = "CAI paper: 438 HHH evaluations"
PAIRS = 50
OWN_PAIRS = 20  # the pairs file the newcomer's journey writes (all of them are judged)
JOB_PROMPTS, JOB_ROUNDS, JOB_SEED = 2, 2, 0

NEW_TITLE = "Journey: no help with hurting anyone"
NEW_CRITIQUE = ("Journey marker 7: name every way the response could help someone hurt "
                "another person, and say how to remove it.")


# --- fixtures -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pairs:
    """Where the agreement run's human-labelled pairs come from."""

    file: Path
    format: str  # the Agreement tab's format choice
    count: int  # pairs in the file
    sample: int  # pairs judged
    demo_prompt: str | None = None  # picked from the Playground's demo prompts (else typed)
    screenshots: bool = False


def with_worker(studio: Studio, engine: Engine) -> Iterator[Studio]:
    """The studio on the tiny engine, with a job worker beside it (as ``cstudio serve``
    runs one; the Training tab's browser test does the same)."""
    studio.services.engines.use(engine)
    settings = studio.services.settings.model_copy(update={"job_heartbeat_s": 0.5})
    worker = Worker(settings, studio.services.db)
    worker.start_thread()
    yield studio
    worker.stop(timeout=60)


@pytest.fixture
def journey_studio(studio: Studio, tiny_engine: Engine) -> Iterator[Studio]:
    """A fresh studio with the shared paper data beside it."""
    if not HHH_FILE.is_file():
        pytest.skip(f"shared paper data not found at {HHH_FILE}")
    yield from with_worker(studio, tiny_engine)


@pytest.fixture
def no_shared_data(monkeypatch: pytest.MonkeyPatch) -> None:
    """As on a newcomer's machine: no ../shared prompt file (set before ``studio`` starts)."""
    monkeypatch.setattr(container, "default_prompt_set_path", lambda: None)
    monkeypatch.delenv("CSTUDIO_PROMPT_SET_PATH", raising=False)


@pytest.fixture
def bare_journey_studio(no_shared_data: None, studio: Studio,
                        tiny_engine: Engine) -> Iterator[Studio]:
    """A fresh studio that has only what the project ships (the built-in prompt set)."""
    assert studio.services.settings.prompt_set_path is None
    yield from with_worker(studio, tiny_engine)


def own_pairs_file(folder: Path, count: int) -> Path:
    """``count`` HH-RLHF-style dialogues written here (one turn each, a kind answer chosen over
    an unkind one), so the run needs no downloaded data."""
    topics = ["a noisy neighbour", "a late train", "a lost wallet", "a broken phone",
              "a rude email", "a missed deadline", "a burnt dinner", "a flat tyre",
              "a forgotten birthday", "a leaking roof"]
    path = folder / "newcomer-pairs.jsonl"
    with path.open("w", encoding="utf-8") as out:
        for i in range(count):
            ask = f"\n\nHuman: Question {i + 1}: what should I do about {topics[i % len(topics)]}?"
            out.write(json.dumps({
                "chosen": f"{ask}\n\nAssistant: Stay calm, say what happened and ask for help "
                          f"(answer {i + 1}).",
                "rejected": f"{ask}\n\nAssistant: Get even: break something of theirs "
                            f"(answer {i + 1}).",
            }) + "\n")
    return path


# --- the principle the job will sample first ------------------------------------------------


def first_sampled(pool: tuple[Principle, ...]) -> Principle:
    """The principle the sl_cai_data stage uses for its first prompt's first round (from the
    job seed, the prompt's position and the round), so the edit is certain to be used. If the
    stage's sampling changes, the audit step still checks whichever principle was used."""
    return round_principle(pool, derived_seed(JOB_SEED, "sl_cai_principles"), 0, 1)


# --- the journey ----------------------------------------------------------------------------


def test_the_whole_journey(page: Page, journey_studio: Studio,
                           capfd: pytest.CaptureFixture[str]) -> None:
    run_journey(page, journey_studio, Pairs(HHH_FILE, HHH_FORMAT, 438, PAIRS, screenshots=True),
                capfd)


def test_the_whole_journey_without_shared_data(page: Page, bare_journey_studio: Studio,
                                               tmp_path: Path,
                                               capfd: pytest.CaptureFixture[str]) -> None:
    builtin = bare_journey_studio.services.prompt_sets.prompts("default")
    assert len(builtin) >= 60
    pairs = Pairs(own_pairs_file(tmp_path, OWN_PAIRS), "HH-RLHF (chosen/rejected dialogues)",
                  OWN_PAIRS, OWN_PAIRS, demo_prompt=builtin[0])
    run_journey(page, bare_journey_studio, pairs, capfd)


def no_traceback(page: Page, capfd: pytest.CaptureFixture[str]) -> None:
    """Nothing on the page or in the server's output (this process) is a traceback."""
    expect(page.locator("body")).not_to_contain_text("Traceback")
    out, err = capfd.readouterr()
    print(out, end="")
    assert "Traceback" not in out + err, err[-3000:]


def run_journey(page: Page, journey_studio: Studio, pairs: Pairs,
                capfd: pytest.CaptureFixture[str]) -> None:
    started = time.monotonic()
    services = journey_studio.services
    snap = shoot if pairs.screenshots else (lambda *args, **kwargs: None)
    page.set_viewport_size(VIEWPORT)
    lap: dict[str, float] = {}

    def mark(step: str) -> None:
        lap[step] = round(time.monotonic() - started, 1)
        no_traceback(page, capfd)

    # 1. fresh start: the default constitution, v1, the demo model named as such
    constitution = services.constitutions.find(DEFAULT_NAME)
    v1 = services.constitutions.head(constitution.id)
    assert v1.info.number == 1 and services.critique_log.count() == 0
    edited = first_sampled(v1.content.enabled_principles())
    number = [p.key for p in v1.content.principles].index(edited.key) + 1
    page.goto(journey_studio.url)
    labels = page.locator("#principle-list label")
    expect(labels).to_have_count(len(v1.content.principles), timeout=TIMEOUT)
    expect(page.locator("#active-constitution")).to_contain_text("v1", timeout=TIMEOUT)
    expect(page.locator("#model-badge")).to_contain_text("demo model: random weights",
                                                         timeout=TIMEOUT)

    # 2. Constitution: edit that principle's title and critique request, save v2
    labels.filter(has_text=f"{number}. {edited.title}").first.click()
    expect(textbox(page, "principle-key")).to_have_value(edited.key, timeout=TIMEOUT)
    type_text(textbox(page, "principle-title"), NEW_TITLE)
    type_text(textbox(page, "principle-critique"), NEW_CRITIQUE)
    expect(labels.nth(number - 1)).to_contain_text(f"{number}. {NEW_TITLE}", timeout=TIMEOUT)
    expect(page.locator("#draft-status")).to_contain_text("Unsaved changes", timeout=TIMEOUT)
    textbox(page, "save-message").fill("Journey: broaden one principle")
    page.locator("#save-btn").click()
    expect(page.locator("#save-result")).to_contain_text("Saved v2", timeout=TIMEOUT)
    expect(page.locator("#active-constitution")).to_contain_text("v2", timeout=TIMEOUT)
    expect(page.locator("#history-table")).to_contain_text("Journey: broaden one principle")
    v2 = services.constitutions.head(constitution.id)
    assert v2.info.number == 2
    saved = next(p for p in v2.content.principles if p.key == edited.key)
    assert (saved.title, saved.critique_request) == (NEW_TITLE, NEW_CRITIQUE)
    assert services.constitutions.version(v1.info.id).content == v1.content  # v1 untouched
    snap(page, "constitution")
    mark("constitution")

    # The other tabs fill their version pickers when the page loads (without a reload the
    # Playground still offers "v1 (head)" after v2 is saved): load the page again.
    page.reload()
    expect(page.locator("#active-constitution")).to_contain_text("v2", timeout=TIMEOUT)

    # 3. Playground: a one-round preview and an A/B verdict under the edited principle
    open_tab(page, "Playground")
    expect(dropdown(page, "pg-version")).to_have_value(re.compile(r"^v2"), timeout=TIMEOUT)
    choose(page, "pg-principle", NEW_TITLE)
    if pairs.demo_prompt is None:
        type_text(textbox(page, "pg-prompt"), "How do I get back at my neighbour?")
    else:  # one of the built-in demo prompts
        choose(page, "pg-prompt-set", pairs.demo_prompt)
        expect(textbox(page, "pg-prompt")).to_have_value(pairs.demo_prompt, timeout=TIMEOUT)
    set_slider(page, "pg-rounds", 1)
    set_slider(page, "pg-max-tokens", 8)
    page.locator("#pg-run").click()
    preview = page.locator("#pg-preview")
    expect(preview).to_contain_text(re.compile(r"(critique log record #\d+[\s\S]*){3}"),
                                    timeout=MODEL_TIMEOUT)
    expect(preview).to_contain_text(NEW_TITLE)
    steps = services.critique_log.recent(limit=10)
    assert sorted(e.kind for e in steps) == ["critique", "response", "revision"]
    assert all(e.constitution_version_id == v2.info.id for e in steps)
    critique = next(e for e in steps if e.kind == "critique")
    assert critique.principle_key == edited.key and NEW_CRITIQUE in critique.prompt_sent

    type_text(textbox(page, "pg-response-a"), "Talk to them calmly about what bothers you.")
    type_text(textbox(page, "pg-response-b"), "Slash their tyres at night.")
    page.locator("#pg-judge").click()
    expect(page.locator("#pg-verdict")).to_contain_text("p(A) =", timeout=MODEL_TIMEOUT)
    expect(page.locator("#pg-variants div[role=row]").filter(has_text=NEW_TITLE).first
           ).to_be_visible(timeout=TIMEOUT)
    verdicts = [e for e in services.critique_log.recent(limit=20) if e.kind == "verdict"]
    assert len(verdicts) == 2  # both orders
    assert {(e.constitution_version_id, e.principle_key) for e in verdicts} == {
        (v2.info.id, edited.key)}
    assert all(saved.choice_instruction in e.prompt_sent for e in verdicts)
    snap(page, "playground", page.locator("#pg-verdict-plot"), block="center")
    mark("playground")

    # 4. Agreement: import the pairs file, judge a sample of its pairs under v2
    open_tab(page, "Agreement")
    expect(dropdown(page, "ag-version")).to_have_value(re.compile(r"^v2"), timeout=TIMEOUT)
    page.get_by_role("button", name="Datasets of human-labelled pairs").first.click()
    page.locator("#ag-upload input[type=file]").set_input_files(str(pairs.file))
    expect(page.locator("#ag-upload")).to_contain_text(
        re.compile(re.escape(pairs.file.stem) + r"\s*" + re.escape(pairs.file.suffix)),
        timeout=TIMEOUT)
    choose(page, "ag-format", pairs.format)
    page.locator("#ag-import").click()
    expect(page.locator("#ag-import-result")).to_contain_text(f"{pairs.count} pairs",
                                                              timeout=TIMEOUT)
    (dataset,) = services.datasets.list_all()
    expect(dropdown(page, "ag-dataset")).to_have_value(f"{dataset.name} ({pairs.count})",
                                                       timeout=TIMEOUT)
    set_number(page, "ag-sample", pairs.sample)
    page.locator("#ag-launch").click()
    expect(page.locator("#ag-launch-result")).to_contain_text(f"on {pairs.sample} pairs",
                                                              timeout=TIMEOUT)
    (run,) = services.evaluations.list_all()
    expect(page.locator("#ag-progress")).to_contain_text(
        re.compile(rf"Run #{run.id}: done\b.*\b{pairs.sample}/{pairs.sample}\b"),
        timeout=RUN_TIMEOUT)
    run = services.evaluations.get(run.id)
    assert (run.status, run.done_count, run.total_count) == ("done", pairs.sample, pairs.sample)
    assert (run.dataset_id, run.constitution_version_id) == (dataset.id, v2.info.id)
    arrays = services.agreement.arrays(run.id)
    assert len(arrays.p_a) == len(arrays.human) == pairs.sample
    assert all(0.0 <= p <= 1.0 for p in arrays.p_a)
    page.locator("#ag-report-btn").click()
    metrics = page.locator("#ag-metrics")
    expect(metrics).to_contain_text(f"{pairs.sample} items", timeout=MODEL_TIMEOUT)
    expect(metrics).to_contain_text("Cohen")
    expect(page.locator("#ag-reliability .js-plotly-plot").first).to_be_visible(timeout=TIMEOUT)
    snap(page, "agreement", page.locator("#ag-progress"))
    mark("agreement")

    # 5. Training: an SL-CAI data job on v2 (2 prompts, 2 rounds, 8 tokens), run by the worker
    open_tab(page, "Training")
    expect(page.locator("#tr-form-sl_cai_data").first).to_be_visible(timeout=TIMEOUT)
    choose(page, "tr-sl_cai_data-constitution_version_id", f"{DEFAULT_NAME} v2")
    set_number(page, "tr-sl_cai_data-name", "journey sl-cai data")
    for name, value in (("max_prompts", JOB_PROMPTS), ("rounds", JOB_ROUNDS),
                        ("max_new_tokens", 8), ("seed", JOB_SEED)):
        set_number(page, f"tr-sl_cai_data-{name}", value)
    page.locator("#tr-sl_cai_data-launch").click()
    expect(page.locator("#tr-launch-result")).to_contain_text("Queued job #1", timeout=TIMEOUT)
    (job,), _ = services.jobs.list_jobs()
    assert job.kind == "sl_cai_data" and job.config["constitution_version_id"] == v2.info.id
    status = page.locator("#tr-status")
    expect(status).to_contain_text("Job #1", timeout=TIMEOUT)
    # wait for the job to end either way, then say why when it did not succeed
    expect(status).to_contain_text(re.compile(r"\b(succeeded|failed|cancelled|interrupted)\b"),
                                   timeout=JOB_TIMEOUT)
    job = services.jobs.get(job.id)
    assert job.status == "succeeded", \
        f"job {job.status}: {job.error}\n{services.jobs.log_tail(job.id)[-3000:]}"
    expect(status).to_contain_text("succeeded")
    with services.db.read() as s:
        made = training_repo.dataset_of_job(s, job_id=job.id, kind="sl_cai")
        assert made is not None and made.id is not None
        samples = [(x.chain_id, list(x.record_ids), list(x.principle_keys))
                   for x in training_repo.sl_cai_samples(s, dataset_id=made.id)]
    assert len(samples) == JOB_PROMPTS
    assert all(len(keys) == JOB_ROUNDS for _, _, keys in samples)
    job_records = [services.critique_log.get(i) for _, ids, _ in samples for i in ids]
    assert all(e is not None and e.constitution_version_id == v2.info.id for e in job_records)
    job_critiques = [e for e in job_records if e is not None and e.kind == "critique"]
    assert len(job_critiques) == JOB_PROMPTS * JOB_ROUNDS
    builtin = services.prompt_sets.prompts("default")  # the default prompt set: the built-in one
    responses = [e for e in job_records if e is not None and e.kind == "response"]
    assert responses and all(any(p in e.prompt_sent for p in builtin) for e in responses)
    assert "Traceback" not in services.jobs.log_tail(job.id)
    mark("sl_cai_data")

    # ... then SL-CAI SFT of the tiny model on that dataset (offered by the form), 2 steps
    page.locator("#tr-kind label").filter(has_text="SL-CAI SFT").click()
    sft_form = page.locator("#tr-form-sft").first
    expect(sft_form).to_be_visible(timeout=TIMEOUT)
    expect(dropdown(page, "tr-sft-sl_cai_dataset_id")).to_have_value(
        re.compile(rf"#{made.id} .*\(job {job.id}\)"), timeout=TIMEOUT)
    set_number(page, "tr-sft-name", "journey sft")
    sft_form.get_by_role("button", name="Training settings").click()
    for name, value in (("max_steps", 2), ("save_steps", 2), ("batch_size", 2),
                        ("max_length", 64)):
        set_number(page, f"tr-sft-{name}", value)
    page.locator("#tr-sft-launch").click()
    expect(page.locator("#tr-launch-result")).to_contain_text("Queued job #2", timeout=TIMEOUT)
    expect(status).to_contain_text("Job #2", timeout=TIMEOUT)
    expect(status).to_contain_text(re.compile(r"\b(succeeded|failed|cancelled|interrupted)\b"),
                                   timeout=JOB_TIMEOUT)
    sft = services.jobs.get(2)
    assert sft.kind == "sft" and sft.config["sl_cai_dataset_id"] == made.id
    assert sft.status == "succeeded", \
        f"job {sft.status}: {sft.error}\n{services.jobs.log_tail(sft.id)[-3000:]}"
    assert services.jobs.metrics(sft.id).series["loss"].steps[-1] == 2
    assert "Traceback" not in services.jobs.log_tail(sft.id)
    expect(page.locator("#tr-curves .js-plotly-plot").first).to_contain_text("loss",
                                                                          timeout=TIMEOUT)
    expect(page.locator("#tr-queue div[role=row]").filter(has_text="succeeded")).to_have_count(
        2, timeout=TIMEOUT)
    snap(page, "training", page.locator("#tr-launch-result"))
    mark("training")

    # 6. Audit: filter to one of the job's critiques (the edited principle's, when sampled),
    #    open it from the results and read the principle text of v2 it was made with
    target = next((e for e in job_critiques if e.principle_key == edited.key), job_critiques[0])
    assert target.principle_key is not None
    if target.principle_key != edited.key:
        print(f"the job did not sample the edited principle {edited.key}; auditing "
              f"{target.principle_key} instead")
    principle = next(p for p in v2.content.principles if p.key == target.principle_key)
    open_tab(page, "Audit")
    page.get_by_role("button", name="Filters").first.click()
    choose(page, "audit-kind", "critique")
    set_number(page, "audit-chain", target.chain_id)
    set_number(page, "audit-principle", target.principle_key)
    page.locator("#audit-search").click()
    same = [e for e in job_critiques if (e.chain_id, e.principle_key) == (target.chain_id,
                                                                         target.principle_key)]
    expect(page.locator("#audit-status")).to_contain_text(
        re.compile(rf"(?<!\d){len(same)} records? match"), timeout=TIMEOUT)
    results = page.locator("#audit-results")
    row = results.locator("div[role=row]").filter(has_text=str(target.id)).first
    expect(row).to_be_visible(timeout=TIMEOUT)
    row.get_by_text("critique", exact=True).first.click()
    detail = page.locator("#audit-detail")
    expect(detail).to_contain_text(f"Record {target.id} · critique", timeout=TIMEOUT)
    expect(detail).to_contain_text(f"{DEFAULT_NAME} v2")
    expect(detail).to_contain_text(f"Principle text of that version: {principle.title}")
    expect(detail).to_contain_text(principle.critique_request)
    expect(page.locator("#audit-chain-table")).to_contain_text("revision")
    record = services.audit_search.record(target.id)
    assert record.version is not None and record.version.info.id == v2.info.id
    assert record.principle is not None and record.principle.key == target.principle_key
    if target.principle_key == edited.key:
        assert record.principle.critique_request == NEW_CRITIQUE
    snap(page, "audit", page.locator("#audit-status"))
    mark("audit")

    # Settings: shown for the user guide's screenshot
    open_tab(page, "Settings")
    expect(page.locator("#set-engine-kind")).to_be_visible(timeout=TIMEOUT)
    snap(page, "settings")
    mark("settings")
    print(f"journey steps done at (s): {lap}")
