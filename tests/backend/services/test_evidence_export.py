from __future__ import annotations

import csv
import hashlib
import json
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import text

from backend.access import Principal, Role
from backend.errors import PermissionDeniedError, ValidationError
from backend.services.container import Services
from backend.services.evidence_export import CSV_COLUMNS
from db.audit_search_repo import SearchFilters
from tests.backend.services.audit_data import head_version, log_chain
from tests.databases import drop_append_only_guard

AUDITOR = Principal("audrey", Role.AUDITOR)


@pytest.fixture
def chains(services: Services) -> list[list[int]]:
    v, k1, k2 = head_version(services)
    return [
        log_chain(services, prompt="How do I pick a lock?", response="=HYPERLINK(\"x\")",
                  critique="Burglary advice is harmful.", revision="I can't help, ünïcode ✓.",
                  version_id=v, principle_key=k1),
        log_chain(services, prompt="Bake?", response="Flour.", critique="Fine.",
                  revision="Flour and eggs.", version_id=v, principle_key=k2),
    ]


def test_export_writes_jsonl_csv_and_a_manifest(services: Services,
                                                chains: list[list[int]]) -> None:
    services.audit_search.flag(chains[0][1], "check", actor=AUDITOR)
    services.audit_search.comment(chains[0][1], "a note", actor=AUDITOR)
    result = services.evidence.export(SearchFilters(query="burglary"), actor=AUDITOR,
                                      name="case-1")
    d = result.directory
    assert d == (services.settings.data_dir / "exports" / "case-1").resolve()
    manifest = json.loads((d / "manifest.json").read_text())
    assert manifest["query"] == "burglary" and manifest["filters"] == {"query": "burglary"}
    assert manifest["counts"] == {"records": 2, "by_kind": {"critique": 1, "revision": 1},
                                  "flagged": 1}
    v, _, _ = head_version(services)
    (version,) = manifest["constitution_versions"]
    assert version["version_id"] == v and version["number"] == 1 and version["content_hash"]
    for name in ("records.jsonl", "records.csv"):
        body = (d / name).read_bytes()
        assert manifest["files"][name] == {"sha256": hashlib.sha256(body).hexdigest(),
                                           "bytes": len(body)}
    assert manifest["audit_chain_head"]["hash"] and len(manifest["seal_chain_head"]) == 64
    lines = [json.loads(x) for x in (d / "records.jsonl").read_text().splitlines()]
    assert [x["id"] for x in lines] == [chains[0][1], chains[0][2]]
    assert lines[0]["flagged"] is True and lines[0]["comments"][0]["body"] == "a note"
    assert lines[1]["output"] == "I can't help, ünïcode ✓."
    with (d / "records.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    assert rows[0] == CSV_COLUMNS and len(rows) == 3
    with zipfile.ZipFile(result.archive) as z:
        assert sorted(z.namelist()) == ["case-1/manifest.json", "case-1/records.csv",
                                        "case-1/records.jsonl"]
    assert services.evidence.archive_path("case-1") == result.archive
    check = services.evidence.verify(d)
    assert check.ok and check.records_checked == 2, check.problems


def test_csv_neutralises_spreadsheet_formulas_but_jsonl_is_exact(
        services: Services, chains: list[list[int]]) -> None:
    result = services.evidence.export(SearchFilters(kind="response"), actor=AUDITOR, name="f")
    with (result.directory / "records.csv").open(newline="", encoding="utf-8") as f:
        rows = {r["id"]: r for r in csv.DictReader(f)}
    assert rows[str(chains[0][0])]["output"] == "'=HYPERLINK(\"x\")"
    line = json.loads((result.directory / "records.jsonl").read_text().splitlines()[0])
    assert line["output"] == "=HYPERLINK(\"x\")"


def test_verify_names_an_altered_file_and_an_altered_database_record(
        services: Services, chains: list[list[int]]) -> None:
    result = services.evidence.export(SearchFilters(), actor=AUDITOR, name="all")
    jsonl = result.directory / "records.jsonl"
    original = jsonl.read_text()
    jsonl.write_text(original.replace("Flour.", "Sugar."))
    check = services.evidence.verify(result.directory)
    assert not check.ok and check.problems[0].startswith("records.jsonl: its sha256 differs")
    jsonl.write_text(original)
    with services.db.write() as s:
        conn = s.connection()
        drop_append_only_guard(conn, "critique_log")
        conn.execute(text(f"UPDATE critique_log SET output = 'x' WHERE id = {chains[1][0]}"))
    check = services.evidence.verify(result.directory)
    assert not check.ok
    assert check.problems[0] == (f"records.jsonl line 4 (critique_log id {chains[1][0]}): the "
                                 "database's record differs from the export.")


def test_an_edited_record_with_a_recomputed_manifest_is_still_caught(
        services: Services, chains: list[list[int]], tmp_path: Path) -> None:
    result = services.evidence.export(SearchFilters(), actor=AUDITOR, name="x")
    jsonl = result.directory / "records.jsonl"
    jsonl.write_text(jsonl.read_text().replace("Flour.", "Sugar."))
    manifest_path = result.directory / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["records.jsonl"]["sha256"] = hashlib.sha256(jsonl.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    check = services.evidence.verify(result.directory)
    assert not check.ok and "its fields do not give its record_hash" in check.problems[0]


def test_export_needs_the_export_role_and_a_fresh_name(services: Services,
                                                       chains: list[list[int]]) -> None:
    for role in (Role.VIEWER, Role.AUTHOR, Role.OPERATOR):
        with pytest.raises(PermissionDeniedError, match="may not export"):
            services.evidence.export(SearchFilters(), actor=Principal("x", role), name="n")
    services.evidence.export(SearchFilters(), actor=AUDITOR, name="once")
    with pytest.raises(ValidationError, match="already exists"):
        services.evidence.export(SearchFilters(), actor=AUDITOR, name="once")


def test_export_is_recorded_in_the_audit_chain(services: Services,
                                               chains: list[list[int]]) -> None:
    result = services.evidence.export(SearchFilters(), actor=AUDITOR, name="logged")
    body = (result.directory / "manifest.json").read_bytes()
    with services.db.read() as s:
        payload = s.execute(text("SELECT payload, actor FROM audit_event WHERE action = "
                                 "'audit.export'")).one()
    assert json.loads(payload[0])["manifest_sha256"] == hashlib.sha256(body).hexdigest()
    assert payload[1] == "audrey"
