"""Helpers for audit tests: critique→revision chains written through the real step logger."""

from __future__ import annotations

from sqlalchemy import text

from backend.access import Principal, Role
from backend.cai.steplog import StepRecord, new_chain_id
from backend.engines.base import EngineInfo
from backend.services.container import Services
from db.evaluation_models import Evaluation, VerdictRow
from tests.backend.services.agreement_data import add_dataset

ENGINE = EngineInfo(kind="tiny", model="tiny-llama-test", is_demo=True)
OTHER_ENGINE = EngineInfo(kind="openai_compat", model="served-model")
AUDITOR = Principal("audrey", Role.AUDITOR)


def head_version(services: Services) -> tuple[int, str, str]:
    """(version id, first principle key, second principle key) of the seeded constitution."""
    cid = services.constitutions.list_all()[0].id
    head = services.constitutions.head(cid)
    principles = head.content.principles
    return head.info.id, principles[0].key, principles[1].key


def log_chain(services: Services, *, prompt: str, response: str, critique: str, revision: str,
              version_id: int | None, principle_key: str | None,
              engine: EngineInfo = ENGINE, actor: str = "ann") -> list[int]:
    """A response, its critique and its revision (linked by parent ids); returns the ids."""
    logger = services.critique_log.logger(actor)
    chain = new_chain_id()
    params: dict[str, object] = {"max_new_tokens": 16, "temperature": 0.0}
    (rid,) = logger.log([StepRecord("response", chain, f"Human: {prompt}\n\nAssistant:",
                                    response, engine, params, version_id, latency_s=0.01)])
    (cid,) = logger.log([StepRecord("critique", chain, f"{response}\n\nCritiqueRequest: ...",
                                    critique, engine, params, version_id, principle_key, 1, rid,
                                    seed=7, latency_s=0.02)])
    (vid,) = logger.log([StepRecord("revision", chain, f"{critique}\n\nRevisionRequest: ...",
                                    revision, engine, params, version_id, principle_key, 1, cid,
                                    seed=7, probabilities={"A": 0.25, "B": 0.75},
                                    latency_s=0.03)])
    return [rid, cid, vid]


def audited_store(services: Services) -> list[int]:
    """A store holding a row of every append-only kind the audit checks: a critique chain, a
    dataset of two pairs, an evaluation whose verdicts cite the chain's revision, and a flag
    and a comment on its critique (by ``AUDITOR``). Returns the chain's record ids."""
    v, k1, _ = head_version(services)
    ids = log_chain(services, prompt="p", response="r", critique="c", revision="v",
                    version_id=v, principle_key=k1)
    add_run(services, dataset_id=add_dataset(services, 2), version_id=v, record_ids=[ids[2]])
    services.audit_search.flag(ids[1], "odd", actor=AUDITOR)
    services.audit_search.comment(ids[1], "first note", actor=AUDITOR)
    return ids


def add_run(services: Services, *, dataset_id: int, version_id: int, record_ids: list[int],
            p_a: float = 0.6) -> int:
    """An evaluation named ``run`` with a verdict for every pair item of the dataset, each
    citing ``record_ids``; returns its id."""
    with services.db.write() as s:
        ev = Evaluation(name="run", dataset_id=dataset_id, constitution_version_id=version_id,
                        engine_kind="tiny", model="m", created_by="t")
        s.add(ev)
        s.flush()
        assert ev.id is not None
        items = s.execute(text("SELECT id FROM pair_item WHERE dataset_id = :d ORDER BY id"),
                          {"d": dataset_id}).scalars()
        for item in items:
            s.add(VerdictRow(evaluation_id=ev.id, item_id=item, p_a=p_a, record_ids=record_ids))
        return ev.id
