"""Issue 13 point 4: tamper evidence that survives truncation and re-forging. Each attack is
what someone with write access to the database does (raw SQL on their own connection, guard
triggers dropped); `audit verify` must name the first missing or altered row, read-only."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest
from sqlalchemy import text
from typer.testing import CliRunner

from backend.services.container import Services
from db.anchor import KEY_FILE, LOG_FILE
from db.audit_chain import event_hash
from db.audit_models import AuditEvent
from db.evaluation_models import Evaluation
from studio.cli import app
from tests.backend.services.audit_data import AUDITOR, audited_store, head_version, log_chain
from tests.databases import drop_append_only_guard

SEALED_LAST = ("verdict", "audit_flag", "audit_comment", "critique_log", "pair_item")


@pytest.fixture
def store(services: Services) -> Services:
    audited_store(services)
    report = services.audit.verify()
    assert report.ok, report.problems
    assert report.anchors_checked > 0
    return services


def attack(services: Services, *sql: str, tables: tuple[str, ...] = ()) -> None:
    """Raw SQL on the attacker's own connection (not the studio's write path)."""
    with services.db.engine.begin() as conn:
        for table in tables:
            drop_append_only_guard(conn, table)
        for statement in sql:
            conn.execute(text(statement))


def _one(services: Services, sql: str) -> int:
    with services.db.read() as s:
        return int(s.execute(text(sql)).scalar_one())


def test_deleting_the_last_audit_events_is_named(store: Services) -> None:
    last = _one(store, "SELECT max(id) FROM audit_event")
    attack(store, f"DELETE FROM audit_event WHERE id >= {last - 1}", tables=("audit_event",))
    report = store.audit.verify()
    assert not report.ok
    assert report.first_broken.startswith(f"audit_event id {last - 1}: missing")


def test_deleting_the_last_seals_is_named(store: Services) -> None:
    first = _one(store, "SELECT max(id) FROM record_seal") - 1
    row = _one(store, f"SELECT row_id FROM record_seal WHERE id = {first}")
    with store.db.read() as s:
        table = str(s.execute(text(f"SELECT table_name FROM record_seal WHERE id = {first}")
                              ).scalar_one())
    attack(store, f"DELETE FROM record_seal WHERE id >= {first}", tables=("record_seal",))
    report = store.audit.verify()
    assert not report.ok
    assert report.first_broken.startswith(
        f"{table} id {row}: its seal (record_seal id {first}) is missing")


def _write_one_more(store: Services, table: str) -> int:
    """A new row of ``table`` written last, through the studio's write path (so sealed)."""
    if table == "critique_log":  # it has its own record hash: write it the real way
        v, k1, _ = head_version(store)
        return log_chain(store, prompt="last", response="r", critique="c", revision="v",
                         version_id=v, principle_key=k1)[-1]
    with store.db.write() as s:
        row = dict(s.execute(text(f"SELECT * FROM {table} ORDER BY id DESC LIMIT 1")
                             ).mappings().one())
        new_id = int(row.pop("id")) + 1000
        if table == "verdict":  # one verdict per (run, item): a new run for the new verdict
            ev = Evaluation(name="run 2", dataset_id=1, constitution_version_id=1,
                            engine_kind="tiny", model="m", created_by="t")
            s.add(ev)
            s.flush()
            row["evaluation_id"] = ev.id
        for key in ("position", "round"):
            if isinstance(row.get(key), int):
                row[key] = row[key] + 1000
        for key in ("content_hash", "record_hash", "chain_id"):
            if isinstance(row.get(key), str):
                row[key] = ("f" * 64)[:len(row[key])]
        for key, value in list(row.items()):
            if isinstance(value, list | dict):
                row[key] = json.dumps(value)
        cols = ["id", *row]
        s.execute(text(f"INSERT INTO {table} ({', '.join(cols)}) VALUES "
                       f"({', '.join(':' + c for c in cols)})"), {"id": new_id, **row})
    return new_id


@pytest.mark.parametrize("table", SEALED_LAST)
def test_deleting_the_last_row_with_its_seal_is_named(store: Services, table: str) -> None:
    new_id = _write_one_more(store, table)
    seal = _one(store, f"SELECT id FROM record_seal WHERE table_name = '{table}' "
                       f"AND row_id = {new_id}")
    assert seal == _one(store, "SELECT max(id) FROM record_seal")  # sealed as it was written
    assert store.audit.verify().problems == []
    attack(store, f"DELETE FROM {table} WHERE id = {new_id}",
           f"DELETE FROM record_seal WHERE id = {seal}", tables=(table, "record_seal"))
    report = store.audit.verify()
    assert not report.ok
    assert report.first_broken == report.problems[0]
    assert report.first_broken.startswith(
        f"{table} id {new_id}: its seal (record_seal id {seal}) is missing")


def test_recomputing_the_chain_after_an_edit_names_the_edited_event(store: Services) -> None:
    with store.db.read() as s:
        events = list(s.exec(text("SELECT id FROM audit_event ORDER BY id")).scalars())
    target = events[len(events) // 2]
    with store.db.engine.begin() as conn:
        drop_append_only_guard(conn, "audit_event")
    from sqlmodel import Session, col, select

    with Session(store.db.engine) as s:  # the attacker's own session: edit, then re-hash
        rows = s.exec(select(AuditEvent).where(col(AuditEvent.id) >= target)
                      .order_by(col(AuditEvent.id))).all()
        prev = s.exec(select(AuditEvent).where(AuditEvent.id == target - 1)).one().hash
        for row in rows:
            if row.id == target:
                row.actor = "someone-else"
            row.prev_hash = prev
            row.hash = event_hash(row)
            prev = row.hash
            s.add(row)
        s.commit()
    report = store.audit.verify()
    assert not report.ok
    assert report.first_broken.startswith(f"audit_event id {target}")
    assert "rewritten" in report.first_broken


def test_a_forged_anchor_line_is_reported(store: Services) -> None:
    log = store.settings.data_dir / LOG_FILE
    lines = log.read_text("utf-8").splitlines()
    item = json.loads(lines[-1])
    item["audit_id"] = 1
    lines[-1] = json.dumps(item)
    log.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = store.audit.verify()
    assert f"{LOG_FILE} line {len(lines)}: its MAC does not hold" in "\n".join(report.problems)


def test_the_key_is_private_and_not_in_the_database(store: Services) -> None:
    data = store.settings.data_dir
    key = data / KEY_FILE
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert stat.S_IMODE((data / LOG_FILE).stat().st_mode) == 0o600
    secret = key.read_text("ascii").strip()
    for path in data.glob("studio.db*"):
        assert secret.encode() not in path.read_bytes()


def test_verify_is_read_only(store: Services) -> None:
    before = (_one(store, "SELECT count(*) FROM record_seal"),
              _one(store, "SELECT count(*) FROM audit_event"),
              (store.settings.data_dir / LOG_FILE).read_bytes())
    store.audit.verify()
    store.audit.verify()
    after = (_one(store, "SELECT count(*) FROM record_seal"),
             _one(store, "SELECT count(*) FROM audit_event"),
             (store.settings.data_dir / LOG_FILE).read_bytes())
    assert before == after


def test_an_export_carries_the_anchor(store: Services, tmp_path: Path) -> None:
    from db.audit_search_repo import SearchFilters

    result = store.evidence.export(SearchFilters(), actor=AUDITOR, directory=tmp_path / "ex")
    anchor = result.manifest["anchor"]
    assert anchor and len(anchor["mac"]) == 64
    # the anchor is the newest before the export's own event
    assert anchor["audit_id"] == _one(store, "SELECT max(id) FROM audit_event") - 1


def test_cli_verify_names_the_truncation_and_fails(store: Services) -> None:
    last = _one(store, "SELECT max(id) FROM audit_event")
    attack(store, f"DELETE FROM audit_event WHERE id = {last}", tables=("audit_event",))
    result = CliRunner().invoke(app, ["audit", "verify", "--data-dir",
                                      str(store.settings.data_dir)])
    assert result.exit_code == 1
    assert f"FIRST BROKEN LINK: audit_event id {last}: missing" in result.output
    assert "Sealed" not in result.output
