from __future__ import annotations

import pytest

from backend.cai.critique_loop import (
    LoopConfig,
    LoopContext,
    run_critique_loop,
    stream_critique_loop,
)
from backend.cai.default_constitution import default_constitution
from backend.cai.steplog import MemoryLogger
from backend.engines.scripted import ScriptedEngine
from backend.errors import ValidationError


def context(engine: ScriptedEngine | None = None) -> tuple[LoopContext, MemoryLogger]:
    logger = MemoryLogger()
    return LoopContext(engine or ScriptedEngine(), default_constitution(), 7, logger), logger


def test_loop_is_batched_per_step_and_logs_every_step() -> None:
    ctx, log = context()
    chains = run_critique_loop(ctx, ["p1", "p2", "p3"], LoopConfig(rounds=2, seed=3))
    engine = ctx.engine
    assert isinstance(engine, ScriptedEngine)
    assert [len(c) for c in engine.generate_calls] == [3, 3, 3, 3, 3]  # response + 2×(crit, rev)
    kinds = [r.kind for r in log.records]
    assert kinds == ["response"] * 3 + ["critique"] * 3 + ["revision"] * 3 + \
        ["critique"] * 3 + ["revision"] * 3
    assert all(r.constitution_version_id == 7 for r in log.records)
    first = chains[0]
    assert [r.round for r in first.rounds] == [1, 2]
    assert first.final == first.rounds[-1].revision
    # links: critique → previous step, revision → its critique
    records = {i + 1: r for i, r in enumerate(log.records)}
    crit = records[first.rounds[1].critique_record]
    assert crit.parent_id == first.rounds[0].revision_record and crit.principle_key
    assert records[first.rounds[0].revision_record].parent_id == first.rounds[0].critique_record
    assert records[first.rounds[0].critique_record].parent_id == first.response_record


def test_principles_are_sampled_reproducibly_from_the_seed() -> None:
    picks = []
    for _ in range(2):
        ctx, _log = context()
        chains = run_critique_loop(ctx, ["a", "b"], LoopConfig(rounds=4, seed=11))
        picks.append([[r.principle.key for r in c.rounds] for c in chains])
    assert picks[0] == picks[1]
    ctx, _log = context()
    other = run_critique_loop(ctx, ["a", "b"], LoopConfig(rounds=4, seed=12))
    assert [[r.principle.key for r in c.rounds] for c in other] != picks[0]


def test_fixed_principle_and_prompts_carry_the_texts() -> None:
    ctx, log = context()
    content = ctx.content
    key = content.principles[5].key
    run_critique_loop(ctx, ["How do I pick a lock?"], LoopConfig(rounds=1, principle_keys=(key,)))
    critique = next(r for r in log.records if r.kind == "critique")
    revision = next(r for r in log.records if r.kind == "revision")
    assert critique.principle_key == key
    assert content.principles[5].critique_request in critique.prompt_sent
    assert "How do I pick a lock?" in critique.prompt_sent
    assert content.principles[5].revision_request in revision.prompt_sent
    few_shot = next(f for f in content.few_shots if f.kind == "critique_revision")
    assert few_shot.data["critique"] in critique.prompt_sent  # few-shot example included


def test_raw_form_uses_the_paper_layout() -> None:
    ctx, log = context()
    run_critique_loop(ctx, ["Hi"], LoopConfig(rounds=1, form="raw", use_few_shots=False))
    critique = next(r for r in log.records if r.kind == "critique")
    assert critique.prompt_sent.startswith("\n\nHuman: Hi\n\nAssistant: out1")
    assert critique.prompt_sent.endswith("\n\nCritique:")


def test_given_responses_skip_generation() -> None:
    ctx, log = context()
    chains = run_critique_loop(ctx, ["q"], LoopConfig(rounds=1), responses=["given answer"])
    assert chains[0].response == "given answer" and chains[0].response_record is None
    assert [r.kind for r in log.records] == ["critique", "revision"]


@pytest.mark.parametrize("bad", ["", "   ", "x" * 20_001, "nul\x00byte", "bidi \u202e"])
def test_bad_prompts_get_a_clear_error(bad: str) -> None:
    ctx, log = context()
    with pytest.raises(ValidationError):
        run_critique_loop(ctx, ["fine", bad], LoopConfig(rounds=1))
    assert log.records == []


def test_unknown_principle_key_is_refused() -> None:
    ctx, _ = context()
    with pytest.raises(ValidationError, match="Unknown principle"):
        run_critique_loop(ctx, ["x"], LoopConfig(rounds=1, principle_keys=("nope",)))


def test_streaming_yields_growing_text_and_logs_each_step() -> None:
    ctx, log = context()
    events = list(stream_critique_loop(ctx, "Tell me a secret", LoopConfig(rounds=2, seed=1)))
    done = [e for e in events if e.done]
    assert [(e.kind, e.round) for e in done] == [("response", None), ("critique", 1),
                                                 ("revision", 1), ("critique", 2),
                                                 ("revision", 2)]
    assert [e.record_id for e in done] == [1, 2, 3, 4, 5]
    partial = [e for e in events if not e.done and e.kind == "response"]
    assert partial[0].text == "out" and done[0].text == "out1"
    assert log.records[1].parent_id == 1 and log.records[2].parent_id == 2
