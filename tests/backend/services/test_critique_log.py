from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from backend.cai.steplog import StepRecord
from backend.engines.base import EngineInfo
from backend.services.container import Services
from tests.databases import drop_append_only_guard


def record(kind: str = "critique", parent: int | None = None) -> StepRecord:
    return StepRecord(kind=kind, chain_id="c1", prompt_sent="prompt ✓", output="out",  # type: ignore[arg-type]
                      engine=EngineInfo("tiny", "m", True), params={"max_tokens": 5},
                      constitution_version_id=1, principle_key="harm-physical", round=1,
                      parent_id=parent, seed=3, probabilities={"A": 0.7}, latency_s=0.01)


def test_records_are_stored_in_order_and_read_back(services: Services) -> None:
    logger = services.critique_log.logger("ann")
    [a, b] = logger.log([record("response"), record("critique")])
    [c] = logger.log([record("revision", parent=b)])
    assert (a, b, c) == (1, 2, 3)
    entries = services.critique_log.chain("c1")
    assert [e.kind for e in entries] == ["response", "critique", "revision"]
    assert entries[2].parent_id == 2 and entries[0].actor == "ann"
    assert entries[1].probabilities == {"A": 0.7} and entries[1].prompt_sent == "prompt ✓"
    assert services.critique_log.count() == 3 and services.critique_log.verify() == []


def test_log_is_append_only_and_edits_are_detectable(services: Services) -> None:
    services.critique_log.logger("ann").log([record(), record()])
    with pytest.raises(IntegrityError, match="append-only"), services.db.write() as s:
        s.connection().execute(text("UPDATE critique_log SET output = 'x'"))
    with services.db.write() as s:
        drop_append_only_guard(s.connection(), "critique_log")
        s.connection().execute(text("UPDATE critique_log SET output = 'forged' WHERE id = 2"))
    assert services.critique_log.verify() == [2]


def test_a_failed_batch_stores_nothing(services: Services) -> None:
    bad = StepRecord(kind="critique", chain_id="c2", prompt_sent="p", output="o",
                     engine=EngineInfo("tiny", "m", True), params={},
                     constitution_version_id=999_999)  # no such version: foreign key fails
    with pytest.raises(IntegrityError):
        services.critique_log.logger("ann").log([record(), bad])
    assert services.critique_log.count() == 0
