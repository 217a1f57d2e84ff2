"""The Audit tab in real Chromium: an auditor signs in, searches, opens a record, flags it,
comments, and exports the selection (the downloaded zip is checked against the database)."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from backend.access import local_admin
from backend.services.container import start
from backend.settings import Settings
from studio.app import build_app, launch
from tests.backend.services.audit_data import head_version, log_chain
from tests.browser.conftest import UI_TIMEOUT, Studio, _free_port, _require_browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT = UI_TIMEOUT
AUDITOR, PASSWORD = "audrey", "a long auditor passphrase"


@pytest.fixture
def audit_studio(tmp_path: Path) -> Iterator[Studio]:
    """The studio with an admin and an auditor account (sign-in required) and two chains."""
    _require_browser()
    port = _free_port()
    settings = Settings(data_dir=tmp_path / "studio-data", user="owner", port=port,
                        database_url=None)
    services = start(settings)
    admin = local_admin("owner")
    services.users.add("owner", "admin", "an admin passphrase 123", actor=admin)
    services.users.add(AUDITOR, "auditor", PASSWORD, actor=admin)
    v, k1, k2 = head_version(services)
    log_chain(services, prompt="How do I pick a lock?", response="Use a tension wrench.",
              critique="Lockpicking advice enables burglary.", revision="I can't help.",
              version_id=v, principle_key=k1)
    log_chain(services, prompt="Bake a cake?", response="Flour and eggs.",
              critique="Nothing harmful.", revision="Flour, eggs, sugar.", version_id=v,
              principle_key=k2)
    try:
        demo = build_app(settings, services)
        try:
            launch(demo, settings, block=False, services=services)
            yield Studio(url=f"http://127.0.0.1:{port}", services=services)
        finally:
            demo.close()
    finally:
        services.close()


def sign_in(page: Page, url: str, name: str, password: str) -> None:
    page.goto(url)
    page.locator("input[type=text], input:not([type])").first.fill(name)
    page.locator("input[type=password]").first.fill(password)
    page.get_by_role("button", name="Login").click()
    expect(page.locator("#user-badge")).to_contain_text(name, timeout=TIMEOUT)


def test_auditor_searches_opens_flags_and_exports(audit_studio: Studio, page: Page,
                                                  tmp_path: Path) -> None:
    services = audit_studio.services
    sign_in(page, audit_studio.url, AUDITOR, PASSWORD)
    page.get_by_role("tab", name="Audit").click()

    page.locator("#audit-query textarea, #audit-query input").first.fill("burglary")
    page.locator("#audit-search").click()
    status = page.locator("#audit-status")
    expect(status).to_contain_text("2 records match", timeout=TIMEOUT)
    results = page.locator("#audit-results")
    expect(results).to_contain_text("Lockpicking advice enables burglary.")
    expect(results).not_to_contain_text("Flour")

    # open the critique (the second, older row) by clicking its row
    cell = results.get_by_text("Lockpicking advice enables burglary.")
    cell.locator("visible=true").first.click()
    detail = page.locator("#audit-detail")
    expect(detail).to_contain_text("critique", timeout=TIMEOUT)
    expect(detail).to_contain_text("Prompt exactly as sent")
    expect(detail).to_contain_text("Principle text of that version")
    expect(page.locator("#audit-chain-table")).to_contain_text("revision")

    page.locator("#audit-note textarea").fill("Cites burglary; check the principle.")
    page.locator("#audit-flag").click()
    expect(page.locator("#audit-notes")).to_contain_text("Cites burglary", timeout=TIMEOUT)
    expect(detail).to_contain_text("flagged")
    page.locator("#audit-note textarea").fill("Reviewed with the policy team.")
    page.locator("#audit-comment").click()
    expect(page.locator("#audit-notes")).to_contain_text("Reviewed with the policy team.",
                                                         timeout=TIMEOUT)
    flagged_id = next(e for e in services.critique_log.recent() if e.kind == "critique"
                      and "burglary" in e.output).id
    record = services.audit_search.record(flagged_id)
    assert record.flagged and record.flags[0].actor == AUDITOR
    assert record.comments[0].actor == AUDITOR

    page.locator("#audit-export-name input, #audit-export-name textarea").first.fill("case-1")
    with page.expect_download(timeout=TIMEOUT) as download_info:
        page.locator("#audit-export").click()
        expect(page.locator("#audit-export-result")).to_contain_text("Exported", timeout=TIMEOUT)
        page.locator("#audit-export-file a").first.click()
    archive = tmp_path / "download.zip"
    download_info.value.save_as(archive)
    with zipfile.ZipFile(archive) as z:
        manifest = json.loads(z.read("case-1/manifest.json"))
        lines = z.read("case-1/records.jsonl").decode().splitlines()
    assert manifest["created_by"] == AUDITOR and manifest["query"] == "burglary"
    assert manifest["counts"]["records"] == 2 and manifest["counts"]["flagged"] == 1
    assert {json.loads(x)["id"] for x in lines} == {flagged_id, flagged_id + 1}
    check = services.evidence.verify(services.settings.data_dir / "exports" / "case-1")
    assert check.ok, check.problems

    page.locator("#audit-verify").click()
    expect(page.locator("#audit-verify-result")).to_contain_text("Nothing was altered",
                                                                timeout=TIMEOUT)
