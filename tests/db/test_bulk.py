"""Multi-row inserts store exactly what the ORM would: floats bit for bit, JSON, datetimes."""

from __future__ import annotations

import random
from typing import Any

from sqlmodel import select

from db.base_models import utcnow
from db.bulk import insert_rows
from db.critique_log_models import CritiqueLogRecord
from db.engine import Database


def test_rows_read_back_equal_what_was_inserted(tmp_path: Any) -> None:
    from db import migrate

    db = Database(f"sqlite:///{tmp_path / 'b.db'}")
    migrate.upgrade(db, "head")
    rng = random.Random(3)
    shared = {"cot": False, "k": [1, 2]}
    now = utcnow()
    rows = [{"id": i + 1, "kind": "verdict", "chain_id": f"c{i}", "parent_id": None,
             "round": None, "constitution_version_id": None, "principle_key": "p",
             "engine_kind": "tiny", "model": "m", "params": shared, "seed": None,
             "prompt_sent": f"prompt {i} ünï", "output": "A",
             "probabilities": {"A": rng.random(), "tiny": rng.random() * 1e-300},
             "latency_s": rng.random() / 7, "actor": "t", "record_hash": "h",
             "created_at": now} for i in range(3000)]  # more than one statement's worth
    table: Any = CritiqueLogRecord.__table__
    with db.write() as s:
        insert_rows(s.connection(), table, rows)
    with db.read() as s:
        stored = list(s.exec(select(CritiqueLogRecord).order_by(CritiqueLogRecord.id)))  # type: ignore[arg-type]
    assert len(stored) == len(rows)
    for row, got in zip(rows, stored, strict=True):
        assert got.latency_s == row["latency_s"] and got.probabilities == row["probabilities"]
        assert got.params == shared and got.prompt_sent == row["prompt_sent"]
        assert got.created_at == now
    db.dispose()
