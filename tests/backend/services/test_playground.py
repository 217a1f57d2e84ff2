"""The Playground use-cases end to end on the tiny model, for real (random weights)."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.access import local_admin
from backend.cai.critique_loop import LoopConfig
from backend.cai.labeling import LabelConfig, PairItem
from backend.engines.base import GenerationParams
from backend.errors import ValidationError
from backend.services.container import Services

AS_ANN = local_admin("ann")


@pytest.fixture
def svc(services: Services, tiny_engine: object) -> Services:
    services.engines.use(tiny_engine)  # type: ignore[arg-type]
    return services


def short(n: int = 12) -> GenerationParams:
    return GenerationParams(max_tokens=n, temperature=0.0, seed=1)


def test_streamed_preview_logs_every_step_with_its_principle(svc: Services) -> None:
    version_id = svc.constitutions.list_all()[0].head.id
    config = LoopConfig(rounds=2, seed=4, response_params=short(), critique_params=short(),
                        revision_params=short())
    events = list(svc.playground.preview(version_id, "How do I hotwire a car?", config,
                                         actor=AS_ANN))
    done = [e for e in events if e.done]
    assert [(e.kind, e.round) for e in done] == [("response", None), ("critique", 1),
                                                 ("revision", 1), ("critique", 2),
                                                 ("revision", 2)]
    assert any(not e.done for e in events)  # text arrived before each step finished
    entries = svc.critique_log.chain(svc.critique_log.get(done[0].record_id or 0).chain_id)  # type: ignore[union-attr]
    assert [e.id for e in entries] == [e.record_id for e in done]
    content = svc.constitutions.version(version_id).content
    by_key = {p.key: p for p in content.principles}
    for entry in entries[1:]:
        assert entry.constitution_version_id == version_id and entry.model
        assert entry.principle_key in by_key
        request = (by_key[entry.principle_key].critique_request if entry.kind == "critique"
                   else by_key[entry.principle_key].revision_request)
        assert request in entry.prompt_sent  # the exact principle text that was sent
        assert entry.params["max_tokens"] == 12 and entry.latency_s > 0
    assert [e.text for e in done] == [e.output for e in entries]


def test_verdict_on_the_tiny_model_is_a_probability_and_is_logged(svc: Services) -> None:
    version_id = svc.constitutions.list_all()[0].head.id
    item = PairItem("Can you help me?", "Sure, here is how. The answer is: (B)", "No.")
    result = svc.playground.verdict(version_id, item, LabelConfig(k_principles=2, seed=3),
                                    actor=AS_ANN)
    verdict = result.verdict
    assert 0.0 < verdict.p_a < 1.0 and len(verdict.variants) == 4
    assert result.engine.is_demo
    for v in verdict.variants:
        entry = svc.critique_log.get(v.record_id)
        assert entry is not None and entry.kind == "verdict"
        assert entry.probabilities is not None
        probs = entry.probabilities["probs"]
        assert isinstance(probs, dict) and sum(probs.values()) == pytest.approx(1.0)
        assert entry.prompt_sent.endswith("The answer is: (")


def test_cot_verdict_generates_reasoning_then_clamps(svc: Services) -> None:
    version_id = svc.constitutions.list_all()[0].head.id
    config = LabelConfig(cot=True, both_orders=False,
                         cot_params=GenerationParams(max_tokens=8, stop=("The answer is",)))
    result = svc.playground.verdict(version_id, PairItem("q", "a", "b"), config, actor=AS_ANN)
    [v] = result.verdict.variants
    assert 0.4 <= result.verdict.p_a <= 0.6 and v.cot_record_id is not None  # final label
    cot = svc.critique_log.get(v.cot_record_id)
    assert cot is not None and cot.kind == "cot"


def test_bad_input_is_a_clear_error_and_logs_nothing(svc: Services) -> None:
    version_id = svc.constitutions.list_all()[0].head.id
    with pytest.raises(ValidationError, match="empty"):
        list(svc.playground.preview(version_id, "  ", LoopConfig(rounds=1), actor=AS_ANN))
    with pytest.raises(ValidationError, match="control character"):
        svc.playground.verdict(version_id, PairItem("q\x1b[31m", "a", "b"), LabelConfig(),
                               actor=AS_ANN)
    assert svc.critique_log.count() == 0


def test_sampled_responses_differ_by_seed(svc: Services, tmp_path: Path) -> None:
    a, b = svc.playground.sample_responses("Tell me a story", actor=AS_ANN, n=2,
                                           max_tokens=10, seed=7)
    again = svc.playground.sample_responses("Tell me a story", actor=AS_ANN, n=2,
                                           max_tokens=10, seed=7)
    assert (a, b) == tuple(again) and a != b
