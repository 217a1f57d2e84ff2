"""Tampering with any stored append-only row is detected by `audit verify`, which names the
first broken link. Each test does what an attacker with database access does: drop the guard
trigger, then edit rows with raw SQL."""

from __future__ import annotations

import pytest
from sqlalchemy import text

from backend.services.container import Services
from tests.backend.services.audit_data import audited_store, head_version, log_chain
from tests.databases import drop_append_only_guard


@pytest.fixture
def store(services: Services) -> Services:
    """A store with a chain, a verdict, a flag and a comment, all sealed."""
    audited_store(services)
    services.audit.seal()
    report = services.audit.verify()
    assert report.ok, report.problems
    return services


def _tamper(services: Services, table: str, sql: str) -> None:
    with services.db.write() as s:
        conn = s.connection()
        drop_append_only_guard(conn, table)
        conn.execute(text(sql))


@pytest.mark.parametrize(("table", "sql", "first"), [
    ("verdict", "UPDATE verdict SET p_a = 0.99 WHERE id = 2",
     "verdict id 2: its contents differ from its seal"),
    ("pair_item", "UPDATE pair_item SET human_label = 0.5 WHERE id = 1",
     "pair_item id 1: its contents differ from its seal"),
    ("audit_comment", "UPDATE audit_comment SET body = 'nothing to see' WHERE id = 1",
     "audit_comment id 1: its contents differ from its seal"),
    ("audit_flag", "DELETE FROM audit_flag WHERE id = 1",
     "audit_flag id 1: the row was deleted after it was sealed"),
    ("verdict", "DELETE FROM verdict WHERE id = 1",
     "verdict id 1: the row was deleted after it was sealed"),
    ("few_shot_example", "UPDATE few_shot_example SET kind = 'choice' WHERE id = 1",
     "few_shot_example id 1: its contents differ from its seal"),
    ("constitution_version", "UPDATE constitution_version SET author = 'mallory' WHERE id = 1",
     "constitution_version id 1: its contents differ from its seal"),
    ("critique_log", "UPDATE critique_log SET output = 'edited' WHERE id = 2",
     "critique_log id 2: its contents differ from its seal"),
    ("audit_event", "UPDATE audit_event SET actor = 'mallory' WHERE id = 2",
     "audit_event id 2: its contents do not match its hash"),
])
def test_tampering_is_named(store: Services, table: str, sql: str, first: str) -> None:
    _tamper(store, table, sql)
    report = store.audit.verify()
    assert not report.ok
    assert report.first_broken is not None and report.first_broken.startswith(first), \
        report.problems


def test_a_rehashed_critique_record_is_caught_by_its_seal(store: Services) -> None:
    from db.critique_log_repo import record_hash

    with store.db.read() as s:
        row = store.critique_log.get(2)
        assert row is not None
        from db.critique_log_models import CritiqueLogRecord

        rec = s.get(CritiqueLogRecord, 2)
        assert rec is not None
        rec.output = "forged"
        forged = record_hash(rec)
        s.rollback()
    _tamper(store, "critique_log",
            f"UPDATE critique_log SET output = 'forged', record_hash = '{forged}' WHERE id = 2")
    report = store.audit.verify()
    assert report.first_broken is not None
    assert report.first_broken.startswith("critique_log id 2: its contents differ from its seal")


def test_a_forged_seal_breaks_the_seal_chain(store: Services) -> None:
    _tamper(store, "verdict", "UPDATE verdict SET p_a = 0.01 WHERE id = 1")
    with store.db.read() as s:
        seal_id = s.execute(text("SELECT id FROM record_seal WHERE table_name = 'verdict' "
                                 "AND row_id = 1")).scalar_one()
    _tamper(store, "record_seal", f"UPDATE record_seal SET row_hash = '{'0' * 64}' "
                                  f"WHERE id = {seal_id}")
    report = store.audit.verify()
    assert report.first_broken == (f"record_seal id {seal_id}: its contents do not match its "
                                   "hash (the seal was altered)")


def test_rows_are_sealed_as_they_are_written_and_verify_never_seals(store: Services) -> None:
    v, k1, _ = head_version(store)
    log_chain(store, prompt="late", response="r", critique="c", revision="v", version_id=v,
              principle_key=k1)
    report = store.audit.verify()
    assert report.ok and report.unsealed == {}
    with store.db.read() as s:
        seals = s.execute(text("SELECT count(*) FROM record_seal")).scalar_one()
        row = dict(s.execute(text("SELECT * FROM audit_comment ORDER BY id DESC LIMIT 1")
                             ).mappings().one())
    # a forged comment slipped in behind the services' back (raw SQL, no seal)
    with store.db.engine.begin() as conn:
        row.pop("id")
        cols = ", ".join(row)
        conn.execute(text(f"INSERT INTO audit_comment ({cols}) VALUES "
                          f"({', '.join(':' + c for c in row)})"), {**row, "body": "forged"})
    report = store.audit.verify()
    assert report.unsealed == {"audit_comment": 1}
    store.audit.verify()
    with store.db.read() as s:  # verify sealed nothing
        assert s.execute(text("SELECT count(*) FROM record_seal")).scalar_one() == seals


def test_a_critique_record_altered_after_writing_is_caught(store: Services) -> None:
    v, k1, _ = head_version(store)
    late = log_chain(store, prompt="late", response="r", critique="c", revision="v",
                     version_id=v, principle_key=k1)
    _tamper(store, "critique_log", f"UPDATE critique_log SET output = 'x' WHERE id = {late[1]}")
    assert store.audit.verify().first_broken.startswith(
        f"critique_log id {late[1]}: its contents differ from its seal")
