"""Helpers for audit tests: critique→revision chains written through the real step logger."""

from __future__ import annotations

from backend.cai.steplog import StepRecord, new_chain_id
from backend.engines.base import EngineInfo
from backend.services.container import Services

ENGINE = EngineInfo(kind="tiny", model="tiny-llama-test", is_demo=True)
OTHER_ENGINE = EngineInfo(kind="openai_compat", model="served-model")


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
