"""Sealing rows from the values their writer noted (no read-back) gives exactly the seals a
read-back gives, and falls back to the read-back whenever the noted values are not the rows."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from backend.services.container import Services
from db import critique_log_repo, evaluation_repo
from db import record_seal as rs
from db.critique_log_repo import NewCritiqueRecord
from db.record_seal import verify_seals


def _record(i: int, latency: float | int = 0.25) -> NewCritiqueRecord:
    return NewCritiqueRecord(
        kind="verdict", chain_id=f"c{i}", parent_id=None, round=None,
        constitution_version_id=None, principle_key="p", engine_kind="tiny", model="m",
        params={"cot": False, "k": [1, 2]}, seed=i, prompt_sent=f"prompt {i} ünï \u202e",
        output="A", probabilities={"A": 0.7, "B": 0.3}, latency_s=latency, actor="t")


def _seals(services: Services) -> list[tuple[str, int, str]]:
    from sqlalchemy import text

    with services.db.read() as s:
        return [(str(a), int(b), str(c)) for a, b, c in s.execute(text(
            "SELECT table_name, row_id, row_hash FROM record_seal ORDER BY id")).all()]


@pytest.fixture
def read_backs(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The batch size of every read-back of rows to seal (1: the fast path's spot check); a
    run's one new prompt prefix (read back as usual) is left out."""
    calls: list[int] = []
    real = rs._iter_rows

    def counting(session: Any, table: Any, after: int, batch: int) -> Any:
        if table.name != "prompt_prefix":
            calls.append(batch)
        return real(session, table, after, batch)

    monkeypatch.setattr(rs, "_iter_rows", counting)
    return calls


def test_noted_rows_are_sealed_as_a_read_back_seals_them(
        services: Services, read_backs: list[int]) -> None:
    if services.db.dialect != "sqlite":
        pytest.skip("the noted-values path is SQLite's (ids are given under its write lock)")
    # an int latency is stored as REAL and reads back as a float: the seal must hash 0.0
    with services.db.write() as s:
        ids = critique_log_repo.insert_records(
            s, [_record(i, latency=0 if i % 2 else 0.5) for i in range(300)])
    assert read_backs == [1, 1]  # only the spot checks of the first and the last row
    with services.db.read() as s:
        report = verify_seals(s)  # recomputes every row's hash from what is stored
    assert report.problems == [] and "critique_log" not in report.unsealed
    sealed = [row for table, row, _ in _seals(services) if table == "critique_log"]
    assert sealed == ids


def test_verdict_chunks_are_sealed_from_their_values(services: Services,
                                                     read_backs: list[int]) -> None:
    if services.db.dialect != "sqlite":
        pytest.skip("the noted-values path is SQLite's")
    from backend.access import local_admin
    from backend.services.evaluations import EvaluationConfig
    from bench.bench_eval_throughput import InstantEngine, _dataset

    services.constitution_io.seed_default(actor=local_admin("t"))
    services.engines.use(InstantEngine(), "test")
    dataset_id = _dataset(services, 96)
    head = services.constitutions.list_all()[0].head.id
    run = services.evaluations.create(dataset_id=dataset_id, version_id=head,
                                      actor=local_admin("t"),
                                      config=EvaluationConfig(batch_size=32))
    read_backs.clear()
    info = services.evaluations.run(run.id, actor=local_admin("t"))
    assert info.done_count == 96
    assert read_backs and set(read_backs) == {1}  # critique log and verdicts: spot checks only
    with services.db.read() as s:
        report = verify_seals(s)
        assert evaluation_repo.count_verdicts(s, evaluation_id=run.id) == 96
    assert report.problems == [] and "verdict" not in report.unsealed


def test_values_that_differ_from_the_stored_row_are_read_back(
        services: Services, read_backs: list[int], monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    if services.db.dialect != "sqlite":
        pytest.skip("the noted-values path is SQLite's")
    real = rs.note_inserted

    def wrong(conn: Any, table_name: str, rows: Any, hashes: Any = None) -> None:
        # a writer noting other values (and no hashes of its own)
        real(conn, table_name, [{**r, "output": "not what was stored"} for r in rows])

    monkeypatch.setattr(critique_log_repo, "note_inserted", wrong)
    with caplog.at_level(logging.WARNING), services.db.write() as s:
        critique_log_repo.insert_records(s, [_record(i) for i in range(5)])
    assert "reading rows back" in caplog.text and max(read_backs) > 1
    with services.db.read() as s:
        assert verify_seals(s).problems == []


def test_rows_inserted_another_way_too_are_read_back(services: Services,
                                                     read_backs: list[int]) -> None:
    if services.db.dialect != "sqlite":
        pytest.skip("the noted-values path is SQLite's")
    with services.db.write() as s:
        critique_log_repo.insert_records(s, [_record(i) for i in range(3)])
        critique_log_repo.insert_record(s, _record(99))  # ORM insert: not noted
    assert max(read_backs) > 1
    with services.db.read() as s:
        assert verify_seals(s).problems == []


def test_nothing_is_noted_outside_a_tracked_transaction(services: Services) -> None:
    with services.db.engine.begin() as conn:  # not a db.write(): no anchor, no tracking
        conn.info.pop(rs.TRACK_ROWS, None)
        rs.note_inserted(conn, "critique_log", [{"id": 1}])
        assert rs.KNOWN_ROWS not in conn.info
