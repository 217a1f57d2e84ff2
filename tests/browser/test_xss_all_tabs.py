"""Security suite, XSS: payloads stored in model output, principles and imported data are shown
as text in real Chromium and execute nothing, across the Constitution, Playground, Agreement,
Compare and Audit tabs. (It lives here, not in tests/security, because it needs this folder's
session-wide Playwright: a second sync Playwright in the same process cannot start.)"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import text

from backend.access import local_admin
from backend.services.container import Services
from db.evaluation_models import Evaluation, VerdictRow
from tests.backend.services.audit_data import head_version, log_chain
from tests.browser.conftest import UI_TIMEOUT, Studio

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT = UI_TIMEOUT
IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=2</script>"
STYLE = "<style>/* xss-style */ body{display:none}</style>"
LINK = "[click me](javascript:window.__xss=3)"
PAYLOAD = f"zebra {IMG} {SCRIPT} {STYLE} {LINK}"
OWNER = local_admin("owner")


def _seed(services: Services) -> None:
    # a principle (title and texts)
    cid = services.constitutions.list_all()[0].id
    head = services.constitutions.head(cid)
    first = dataclasses.replace(head.content.principles[0], title=f"Title {IMG}",
                                critique_request=f"Critique {PAYLOAD}")
    content = dataclasses.replace(head.content, principles=(first, *head.content.principles[1:]))
    services.constitutions.save(cid, head.info.id, content, f"msg {SCRIPT}", actor=OWNER)
    # model output in the critique log
    v, k1, _ = head_version(services)
    ids = log_chain(services, prompt=f"prompt {PAYLOAD}", response=f"response {PAYLOAD}",
                    critique=f"critique {PAYLOAD}", revision=f"revision {PAYLOAD}",
                    version_id=v, principle_key=k1)
    # imported data, judged by a (stored) run whose verdict disagrees with the human label
    raw = json.dumps({"prompt": f"Q {PAYLOAD}", "response_a": f"A {PAYLOAD}",
                      "response_b": f"B {SCRIPT}", "label": "A"}).encode()
    mapping = {"prompt": "prompt", "response_a": "response_a", "response_b": "response_b",
               "label": "label"}
    info = services.datasets.import_file("pairs.jsonl", raw, "jsonl", actor=OWNER,
                                         name="hostile pairs", mapping=mapping)
    with services.db.write() as s:
        item_id, human = s.execute(text("SELECT id, human_label FROM pair_item WHERE "
                                        f"dataset_id = {info.id}")).one()
        ev = Evaluation(name="hostile run", dataset_id=info.id, constitution_version_id=v,
                        engine_kind="tiny", model="m", item_ids=[item_id], status="done",
                        done_count=1, total_count=1, created_by="owner")
        s.add(ev)
        s.flush()
        assert ev.id is not None
        s.add(VerdictRow(evaluation_id=ev.id, item_id=item_id, p_a=0.1 if human else 0.9,
                         principle_keys=[k1], variants=[{"cot": f"cot {PAYLOAD}"}],
                         record_ids=[ids[2]]))
    _seed_comparison(services, v, ids[2])


def _seed_comparison(services: Services, version_id: int, record_id: int) -> None:
    """A stored comparison whose policy labels, prompt, responses, principle key and CoT are
    hostile (as a job name, a prompt file and model output could be)."""
    from db import comparison_repo

    policies = [{"ref": "base", "label": f"base {IMG}", "kind": "base", "location": "m",
                 "job_id": None},
                {"ref": "job:9", "label": f"job {SCRIPT}", "kind": "job", "location": "x",
                 "job_id": 9}]
    with services.db.write() as s:
        row = comparison_repo.create_comparison(
            s, name="hostile comparison", constitution_version_id=version_id,
            policies=policies, prompts=[{"text": f"cmp prompt {PAYLOAD}", "tags": [IMG]}],
            status="done", total_count=3, created_by="owner")
        assert row.id is not None
        comparison_repo.insert_responses(s, comparison_id=row.id, rows=[
            {"policy_index": i, "prompt_index": 0, "response": f"cmp answer{i} {PAYLOAD}"}
            for i in range(2)])
        comparison_repo.insert_verdicts(s, comparison_id=row.id, rows=[{
            "prompt_index": 0, "policy_a": 0, "policy_b": 1, "p_a": 0.3, "chain_id": "c",
            "per_principle": {f"key {IMG}": 0.3},
            "variants": [{"principle": f"key {IMG}", "order": "AB", "cot": f"cmp cot {PAYLOAD}",
                          "record_id": record_id}], "record_ids": [record_id]}])


def _assert_inert(page: Page) -> None:
    assert page.evaluate("typeof window.__xss") == "undefined"
    found = page.evaluate("""() => ({
        img: document.querySelectorAll('img[src="x"]').length,
        script: [...document.scripts].filter(s => s.text.includes('__xss')).length,
        style: [...document.querySelectorAll('style')]
            .filter(s => s.textContent.includes('xss-style')).length,
        link: document.querySelectorAll('a[href^="javascript:"]').length,
    })""")
    assert found == {"img": 0, "script": 0, "style": 0, "link": 0}
    assert page.locator("body").is_visible()


def test_stored_payloads_render_as_text_in_every_tab(studio: Studio, page: Page) -> None:
    _seed(studio.services)
    page.goto(studio.url)

    # Constitution: the principle list and editor show the title and texts literally
    expect(page.locator("#principle-list")).to_contain_text(f"Title {IMG}", timeout=TIMEOUT)
    _assert_inert(page)

    page.get_by_role("tab", name="Playground").click()
    expect(page.locator("#pg-constitution")).to_be_visible(timeout=TIMEOUT)
    _assert_inert(page)

    page.get_by_role("tab", name="Agreement").click()
    expect(page.locator("#ag-run input")).to_have_value("#1 hostile run", timeout=TIMEOUT)
    page.locator("#ag-browse").click()
    browser_md = page.locator("#ag-browser")
    expect(browser_md).to_contain_text(f"Q zebra {IMG}", timeout=TIMEOUT)
    expect(browser_md).to_contain_text(SCRIPT)
    expect(browser_md).to_contain_text(f"cot zebra {IMG}")
    _assert_inert(page)

    page.get_by_role("tab", name="Compare").click()
    expect(page.locator("#cmp-run input")).to_have_value("#1 hostile comparison",
                                                         timeout=TIMEOUT)
    page.locator("#cmp-report-btn").click()
    expect(page.locator("#cmp-summary")).to_contain_text(f"job {SCRIPT}", timeout=TIMEOUT)
    expect(page.locator("#cmp-summary")).to_contain_text(f"base {IMG}")
    page.locator("#cmp-browse").click()
    cmp_browser = page.locator("#cmp-browser")
    expect(cmp_browser).to_contain_text(f"cmp prompt zebra {IMG}", timeout=TIMEOUT)
    expect(cmp_browser).to_contain_text(f"cmp answer1 zebra {IMG} {SCRIPT} {STYLE} {LINK}")
    expect(cmp_browser).to_contain_text(f"cmp cot zebra {IMG}")
    expect(cmp_browser).to_contain_text(f"key {IMG}")
    _assert_inert(page)

    page.get_by_role("tab", name="Audit").click()
    page.locator("#audit-query textarea, #audit-query input").first.fill("zebra")
    page.locator("#audit-search").click()
    results = page.locator("#audit-results")
    expect(results).to_contain_text(f"revision zebra {IMG}", timeout=TIMEOUT)
    page.locator("#audit-open-id input").fill("2")
    page.locator("#audit-open").click()
    detail = page.locator("#audit-detail")
    expect(detail).to_contain_text(f"critique zebra {IMG} {SCRIPT} {STYLE} {LINK}",
                                   timeout=TIMEOUT)
    expect(detail).to_contain_text(f"Title {IMG}")  # the principle text of that version
    expect(detail).to_contain_text(f"Critique {PAYLOAD}")
    page.locator("#audit-note textarea").fill(f"note {PAYLOAD}")
    page.locator("#audit-comment").click()
    expect(page.locator("#audit-notes")).to_contain_text(f"note zebra {IMG}", timeout=TIMEOUT)
    _assert_inert(page)


def test_an_uploaded_prompt_set_name_renders_as_text(studio: Studio, page: Page,
                                                     tmp_path: Path) -> None:
    """Training tab, prompt-set upload (issue 13 point 6): the result names the set literally."""
    prompts = tmp_path / "hostile.jsonl"
    prompts.write_text(json.dumps({"prompt": f"prompt {PAYLOAD}", "tags": [IMG]}) + "\n",
                       encoding="utf-8")
    page.goto(studio.url)
    page.get_by_role("tab", name="Training").click()
    page.get_by_text("Import a prompt set").click()
    page.locator("#tr-prompt-file input[type=file]").set_input_files(str(prompts))
    page.locator("#tr-prompt-name textarea, #tr-prompt-name input").first.fill(f"set {IMG}")
    page.locator("#tr-prompt-import").click()
    expect(page.locator("#tr-prompt-result")).to_contain_text(f"set {IMG}", timeout=TIMEOUT)
    _assert_inert(page)
    stored = studio.services.prompt_sets.list_all()
    assert any(p.name == f"set {IMG}" for p in stored)


def test_issue16_views_render_as_text(studio: Studio, page: Page) -> None:
    """The votes view with adjudication (voter names, ruling reason), the version-alias tables
    (who set an alias) and the Playground side-by-side (a hostile prompt) show text only."""
    from db import alias_repo

    services = studio.services
    v, _, _ = head_version(services)
    ids = log_chain(services, prompt="p", response="r", critique="c", revision="v",
                    version_id=v, principle_key=head_version(services)[1])
    _seed_comparison(services, v, ids[2])
    votes = services.comparison_votes
    votes.vote(1, 1, "A", actor=local_admin(f"voter {IMG}"))
    votes.vote(1, 1, "B", actor=local_admin(f"voter {SCRIPT}"))
    votes.adjudicate(1, 1, "tie", actor=OWNER, reason=f"reason {PAYLOAD}")
    cid = services.constitutions.list_all()[0].id
    with services.db.write() as s:
        alias_repo.set_alias(s, constitution_id=cid, name="production", version_id=v,
                             set_by=f"setter {IMG}")
    page.goto(studio.url)

    page.get_by_role("tab", name="Compare").click()
    expect(page.locator("#cmp-run input")).to_have_value("#1 hostile comparison",
                                                         timeout=TIMEOUT)
    page.locator("#cmp-votes-view-btn").click()
    view = page.locator("#cmp-votes-view")
    expect(view).to_contain_text(f"voter {IMG}", timeout=TIMEOUT)
    expect(view).to_contain_text(f"voter {SCRIPT}")
    expect(view).to_contain_text(f"reason zebra {IMG}")
    _assert_inert(page)

    page.get_by_role("tab", name="Constitution").click()
    page.get_by_text("Version aliases (production, staging)").click()
    expect(page.locator("#alias-table")).to_contain_text(f"setter {IMG}", timeout=TIMEOUT)
    expect(page.locator("#alias-history")).to_contain_text(f"setter {IMG}")
    _assert_inert(page)

    page.get_by_role("tab", name="Playground").click()
    expect(page.locator("#pg-version input").first).to_have_value("v1 (head)", timeout=TIMEOUT)
    page.locator("#pg-prompt textarea").fill(f"prompt {PAYLOAD}")
    for slider in ("pg-rounds", "pg-max-tokens"):
        box = page.locator(f"#{slider} input[type=number]").first
        box.fill("1" if slider == "pg-rounds" else "8")
        box.press("Enter")
    page.get_by_text("Side by side: the same prompt with two policies").click()
    page.locator("#pg-sbs-run").click()
    expect(page.locator("#pg-sbs-b")).to_contain_text("Round 1 · revision", timeout=120_000)
    expect(page.locator("#pg-sbs-a")).to_contain_text("Policy: base")
    _assert_inert(page)


def test_issue17_pipeline_view_renders_as_text(studio: Studio, page: Page) -> None:
    """The Pipelines tab: a hostile pipeline name, a stage's error (log text) and the final
    comparison's policy labels are shown as text."""
    from db import job_repo, pipeline_repo
    from tests.backend.services.pipeline_data import tiny_spec

    services = studio.services
    v, key, _ = head_version(services)
    info = services.pipelines.launch(tiny_spec(name=f"pl {PAYLOAD}"), actor=OWNER)
    ids = log_chain(services, prompt="p", response="r", critique="c", revision="v",
                    version_id=v, principle_key=key)
    _seed_comparison(services, v, ids[2])
    with services.db.write() as s:
        job_repo.update_job(s, job_id=info.stages[0].job.id, status="failed",
                            error=f"boom {PAYLOAD}")
        pipeline_repo.set_comparison(s, pipeline_id=info.id,
                                     comparison_id=services.comparisons.list_all()[0].id)
    page.goto(studio.url)
    page.get_by_role("tab", name="Pipelines").click()
    summary = page.locator("#pl-summary")
    expect(summary).to_contain_text(f"pl zebra {IMG}", timeout=TIMEOUT)
    expect(page.locator("#pl-stages")).to_contain_text(f"boom zebra {IMG}", timeout=TIMEOUT)
    expect(page.locator("#pl-stages")).to_contain_text("Not run: the sl_cai_data stage")
    expect(page.locator("#pl-result")).to_contain_text(f"job {SCRIPT}", timeout=TIMEOUT)
    _assert_inert(page)
