"""Migration 0015: ``verdict_count`` is backfilled from the verdicts already stored, and the
insert trigger keeps counting the ones written after it, in the same buckets."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
from sqlalchemy import Connection, text

from db import migrate
from db.engine import Database
from db.evaluation_repo import confidence_bucket
from tests.db.migration_data import seed_every_table


@pytest.fixture
def empty_db(empty_database_url: str) -> Iterator[Database]:
    database = Database(empty_database_url)
    yield database
    database.dispose()


def _expected(conn: Connection) -> Counter[tuple[object, ...]]:
    out: Counter[tuple[object, ...]] = Counter()
    for ev, key, human, disagrees, conf in conn.execute(text(
            "SELECT evaluation_id, principle_key, human_label, disagrees, confidence "
            "FROM verdict")):
        out[(ev, key or "", -1.0 if human is None else float(human),
             -1 if disagrees is None else int(bool(disagrees)), confidence_bucket(conf))] += 1
    return out


def _counted(conn: Connection) -> Counter[tuple[object, ...]]:
    return Counter({(ev, key, float(human), int(d), int(b)): int(n) for ev, key, human, d, b, n
                    in conn.execute(text("SELECT evaluation_id, principle_key, human_label, "
                                         "disagrees, bucket, n FROM verdict_count"))})


def test_backfill_and_trigger_count_every_verdict(empty_db: Database) -> None:
    migrate.upgrade(empty_db, "0014")
    with empty_db.engine.begin() as conn:
        seed_every_table(conn)  # three verdicts (confidence 0.25, 1.25, 2.25) among the rest
    migrate.upgrade(empty_db)
    with empty_db.engine.begin() as conn:
        assert _counted(conn) == _expected(conn) and sum(_counted(conn).values()) == 3
        pairs = [(1, 2), (1, 3), (2, 1), (2, 3), (3, 1)]  # (run, item) not seeded yet
        for n, conf in enumerate([0.29, 0.57, 0.71, 1.0, None]):  # after: the trigger counts
            conn.execute(text(
                "INSERT INTO verdict (evaluation_id, item_id, p_a, principle_keys, variants, "
                "record_ids, created_at, bounded, confidence, disagrees, principle_key, "
                "human_label) VALUES (:ev, :item, 0.5, '[]', '[]', '[]', :at, 0, :c, :d, :k, "
                ":h)"), {"ev": pairs[n][0], "item": pairs[n][1], "c": conf,
                         "d": None if n == 4 else n % 2 == 0, "k": None if n == 1 else "harm",
                         "h": 1.0 if n < 3 else None, "at": "2026-11-28 00:00:00"})
    with empty_db.engine.connect() as conn:
        assert _counted(conn) == _expected(conn) and sum(_counted(conn).values()) == 8
    migrate.downgrade(empty_db, "0014")
    migrate.upgrade(empty_db)
    with empty_db.engine.connect() as conn:
        assert _counted(conn) == _expected(conn)
