from __future__ import annotations

import itertools
from collections.abc import Iterator

import pytest
from sqlalchemy import text
from sqlmodel import col, select

from db import migrate
from db.audit_chain import GENESIS_HASH, append_event, event_hash, verify_chain
from db.audit_models import AuditEvent
from db.engine import Database
from tests.databases import drop_append_only_guard


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    migrate.upgrade(database)
    with database.write() as s:
        for i in range(5):
            append_event(s, actor="ann", action="test.event", entity_type="thing",
                         entity_id=str(i), payload={"i": i, "text": "héllo ✓"})
    yield database
    database.dispose()


def tamper(db: Database, sql: str) -> None:
    """What an attacker with file access does: drop the guard triggers, then edit rows."""
    with db.write() as s:
        conn = s.connection()
        drop_append_only_guard(conn, "audit_event")
        conn.execute(text(sql))


def test_chain_links_each_event_to_the_previous_one(db: Database) -> None:
    with db.read() as s:
        rows = list(s.exec(select(AuditEvent).order_by(col(AuditEvent.id))))
    assert rows[0].prev_hash == GENESIS_HASH
    for before, after in itertools.pairwise(rows):
        assert after.prev_hash == before.hash
    assert all(event_hash(r) == r.hash for r in rows)
    with db.read() as s:
        report = verify_chain(s)
    assert report.ok and report.checked == 5 and report.head_hash == rows[-1].hash


def test_altered_payload_is_named(db: Database) -> None:
    tamper(db, "UPDATE audit_event SET payload = '{\"i\": 99}' WHERE id = 3")
    with db.read() as s:
        report = verify_chain(s)
    assert not report.ok and report.broken_id == 3 and "altered" in report.reason
    assert report.checked == 2


def test_deleted_row_breaks_the_next_link(db: Database) -> None:
    tamper(db, "DELETE FROM audit_event WHERE id = 2")
    with db.read() as s:
        report = verify_chain(s)
    assert not report.ok and report.broken_id == 3 and "prev_hash" in report.reason


def test_rehashed_row_is_caught_at_the_following_row(db: Database) -> None:
    with db.read() as s:
        row = s.get(AuditEvent, 4)
        assert row is not None
    row.actor = "mallory"
    forged = event_hash(row)
    tamper(db, f"UPDATE audit_event SET actor = 'mallory', hash = '{forged}' WHERE id = 4")
    with db.read() as s:
        report = verify_chain(s)
    assert not report.ok and report.broken_id == 5
