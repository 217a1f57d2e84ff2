"""bench/bench_vs_langchain.py: its arms do the work the benchmark says they do (no timing).

The fair peer (LangChain's HuggingFacePipeline driven by LCEL ``.batch()``) decodes exactly
``MAX_TOKENS`` per row in pipeline batches, reads the same prompt tokens as our engine and
never touches our engine; the principles planned for the LangChain arms are the ones our
loop samples."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.cai.critique_loop import LoopConfig, LoopContext, run_critique_loop
from backend.cai.default_constitution import default_constitution
from backend.cai.steplog import MemoryLogger
from backend.engines.base import GenerationParams

pytest.importorskip("langchain_huggingface")
bench = pytest.importorskip("bench.bench_vs_langchain")

PROMPTS = ["How do I bake bread?", "Tell me how to pick a lock, quickly please.",
           "What is the capital of France?"]


@pytest.fixture(scope="module")
def engine(tiny_model_path: Path) -> object:
    eng = bench.CountingEngine(str(tiny_model_path), device="cpu", max_batch_size=16,
                               ignore_eos=True, is_demo=True)
    eng.tally = bench.Tally()
    yield eng
    eng.close()


def test_planned_principles_are_the_ones_the_loop_samples(engine: object) -> None:
    content = default_constitution()
    params = GenerationParams(max_tokens=2, temperature=0.0)
    config = LoopConfig(rounds=bench.ROUNDS, form="raw", seed=bench.SEED, response_params=params,
                        critique_params=params, revision_params=params)
    ctx = LoopContext(engine=engine, content=content, version_id=None,  # type: ignore[arg-type]
                      logger=MemoryLogger())
    chains = run_critique_loop(ctx, PROMPTS, config)
    plans = bench.planned_principles(content, PROMPTS)
    assert [[r.principle.key for r in c.rounds] for c in chains] == [
        [p.key for p in plan] for plan in plans]


@pytest.mark.slow
@pytest.mark.parametrize("batch_size", [2, 4])
def test_hf_pipeline_peer_batches_and_decodes_max_tokens(
        engine: object, tiny_model_path: Path, batch_size: int) -> None:
    content = default_constitution()
    plans = bench.planned_principles(content, PROMPTS)
    llm, tally = bench.make_hf_pipeline_llm(tiny_model_path, engine, batch_size, 8)
    engine.tally = bench.Tally()  # type: ignore[attr-defined]
    out = bench.lcel_batch_loop(llm, content, plans, PROMPTS)()
    steps = 1 + 2 * bench.ROUNDS
    assert len(out) == len(PROMPTS) and all(isinstance(t, str) and t for t in out)
    assert tally.calls == steps * -(-len(PROMPTS) // batch_size)  # one generate per batch
    assert tally.rows == steps * len(PROMPTS)
    assert tally.completion_tokens == steps * len(PROMPTS) * 8  # EOS never ends a row early
    assert engine.tally.calls == 0  # type: ignore[attr-defined]
    # return_full_text=False: the answer, not the prompt echoed back
    assert not any(t.startswith("\n\nHuman:") for t in out)
    # the first step's prompts are read as our engine reads them (same tokenizer, same ids)
    first = bench.same_prompt_templates(content)[0]
    ours = sum(len(engine._encode(  # type: ignore[attr-defined]
        bench.Prompt.raw(first.format(question=q))).ids) for q in PROMPTS)
    tally.reset()
    first_chain = first | llm
    first_chain.batch([{"question": q} for q in PROMPTS])
    assert tally.prompt_tokens == ours


def test_the_model_flag_takes_tiny_smollm2_or_a_folder(tmp_path: Path) -> None:
    assert bench.parse_args([]).model == "tiny"
    assert bench.parse_args(["--model", "smollm2"]).model == "smollm2"
    with pytest.raises(SystemExit):
        bench.resolve_model(str(tmp_path), tmp_path)  # no config.json there


def test_lcel_arms_ask_for_our_raw_stop_strings(engine: object,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """The LCEL arms request the stop strings our loop sends, so the same-engine arm does the
    same engine work as our loop (stop-string checks included)."""
    from backend.cai import prompts as P

    seen: list[tuple[str, ...]] = []
    real = engine.generate  # type: ignore[attr-defined]

    def spy(prompts: list[object], params: GenerationParams) -> object:
        seen.append(params.stop)
        return real(prompts, params)

    monkeypatch.setattr(engine, "generate", spy)
    content = default_constitution()
    params = GenerationParams(max_tokens=2, temperature=0.0)
    llm = bench.make_batch_llm(engine, params)
    bench.lcel_batch_loop(llm, content, bench.planned_principles(content, PROMPTS), PROMPTS)()
    assert len(seen) == 1 + 2 * bench.ROUNDS
    assert all(set(P.RAW_STOPS) <= set(stop) for stop in seen), seen
