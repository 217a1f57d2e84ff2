"""DeferredStepLogger: records kept on the model thread, stored on the writer with their
parents mapped; a write whose transaction failed can be written again."""

from __future__ import annotations

import pytest

from backend.cai.steplog import StepRecord, new_chain_id
from backend.common.critique_log import DeferredStepLogger
from backend.engines.base import EngineInfo
from backend.services.container import Services
from db import critique_log_repo as repo
from db.record_seal import verify_seals

ENGINE = EngineInfo(kind="tiny", model="m")


def _step(kind: str, chain: str, parent: int | None, latency: float = 0.25) -> StepRecord:
    return StepRecord(kind=kind, chain_id=chain, prompt_sent=f"{kind} prompt \"q\"\n",  # type: ignore[arg-type]
                      output=f"{kind} out", engine=ENGINE, params={"cot": True},
                      constitution_version_id=None, principle_key="p", parent_id=parent,
                      probabilities={"A": 0.25, "B": 0.75} if kind == "verdict" else None,
                      latency_s=latency)


def test_parents_are_mapped_and_a_failed_write_can_be_written_again(services: Services) -> None:
    chain = new_chain_id()
    logger = DeferredStepLogger("tester")
    cot = logger.log([_step("cot", chain, None, latency=0)])  # an int latency reads back 0.0
    logger.log([_step("verdict", chain, cot[0])])
    with pytest.raises(RuntimeError), services.db.write() as s:
        logger.write(s)
        raise RuntimeError("the chunk's transaction fails after the records went in")
    with services.db.write() as s:
        ids = logger.write(s)
    with services.db.read() as s:
        stored = repo.chain_records(s, chain_id=chain)
        assert [r.kind for r in stored] == ["cot", "verdict"]
        assert stored[1].parent_id == stored[0].id == ids[cot[0]]
        assert all(r.record_hash == repo.record_hash(r) for r in stored)
        assert verify_seals(s).problems == []
    assert services.critique_log.verify() == []
