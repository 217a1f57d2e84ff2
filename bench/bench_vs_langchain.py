"""Benchmark (d): our critique → revision loop vs LangChain's ``ConstitutionalChain``.

Both run on the same engine (the demo model, built into a temporary directory; no network),
for the same 16 prompts (first human turns of the shared HH-RLHF sample, or built-in prompts
when it is absent), the same principles and the same greedy settings:

* ours: ``run_critique_loop`` over all 16 prompts at once (raw prompt form, default
  constitution, 2 rounds, a ``MemoryLogger``), i.e. 5 batched ``generate`` calls;
* langchain: ``ConstitutionalChain`` invoked once per prompt (its normal use), driving the
  same ``LocalEngine`` through a minimal ``langchain_core`` ``LLM`` subclass that calls
  ``engine.generate([prompt], params)`` for each prompt it gets. Each chain gets, as its
  two principles, exactly the principles our loop samples for that prompt in rounds 1 and 2,
  so both do one response, then critique + revision per principle: 5 calls per prompt.
* langchain_same_prompts: the same chain, but with prompt templates that render our raw
  prompts (our few-shot examples, ``Human:``/``CritiqueRequest:`` layout) instead of
  LangChain's own few-shot templates, so prefill work matches ours too.
* langchain_batch (the fair peer, issue 15): LangChain as its docs recommend for many inputs:
  LCEL ``prompt | llm`` runnables with ``.batch()`` per step, over a batching model wrapper
  (``BaseLLM._generate`` hands the whole batch to one ``engine.generate``), with our prompt
  texts: the same 5 batched ``generate`` calls as ours. ``speedup_vs_batch`` is its time over
  ours.

The engine ignores EOS, so every call decodes exactly ``MAX_TOKENS`` tokens on every arm
(random weights could otherwise stop early and make the arms do different amounts of work);
this is checked. Prefill work is not equal on the stock arm: LangChain's critique and revision
templates carry their own, longer few-shot examples, so its prompts have about twice as many
tokens as ours; the mean prompt tokens per call of each arm are recorded. The stock chain also
parses critiques ("No critique needed" would skip a revision; the call count is checked).

Where the ratio comes from: LangChain's own overhead is under 1 ms per model call, so it is
what our engine gains from being handed a batch. (1) The critique and revision prompts of a
batch begin with the same few-shot examples (about 1,300 of 1,500 tokens); ``LocalEngine``
reads that prefix once per batch and lets every row attend to a single copy of it (prefill
and decode), where a one-prompt call must read all of it every time. (2) Rows are read
right-padded without an attention mask (PyTorch's fused causal kernel) and decoded together
from one cache that grows in place. An engine that also cached prefixes *across* calls
(vLLM's automatic prefix caching) would give the one-prompt-at-a-time chains part of (1) too;
``LocalEngine`` shares prefixes only within a call.

One torch thread, as in bench_local_engine (set CSTUDIO_BENCH_THREADS to change). Arms are run
alternately, after one warm-up each, and the median of the repeats is reported.

Needs the ``bench`` extra: pip install -e '.[bench]' (langchain-classic).

Run: python -m bench.bench_vs_langchain
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path
from typing import Any

from backend.cai import prompts as P
from backend.cai.constitution import ConstitutionContent, Principle
from backend.cai.critique_loop import LoopConfig, LoopContext, run_critique_loop
from backend.cai.default_constitution import default_constitution
from backend.cai.sampling import eligible, sample_one
from backend.cai.steplog import MemoryLogger
from backend.engines.base import Generation, GenerationParams, Prompt
from backend.engines.local import LocalEngine
from backend.engines.tiny import TINY_MODEL_NAME, build_tiny_model
from backend.services.prompt_sets import default_prompt_set_path, load_first_human_turns
from bench.prompts import FALLBACK_PROMPTS
from bench.results import record

COMMAND = "python -m bench.bench_vs_langchain"
THREADS = int(os.environ.get("CSTUDIO_BENCH_THREADS", "1"))
N_PROMPTS = 16
ROUNDS = 2
MAX_TOKENS = 48
REPEATS = 3
SEED = 0


@dataclass
class Tally:
    """Work done by an engine: generate calls, rows, prompt and completion tokens."""

    calls: int = 0
    rows: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def add(self, gens: Sequence[Generation]) -> None:
        self.calls += 1
        self.rows += len(gens)
        self.prompt_tokens += sum(g.prompt_tokens or 0 for g in gens)
        self.completion_tokens += sum(g.completion_tokens or 0 for g in gens)


class CountingEngine(LocalEngine):
    """A LocalEngine that tallies the work of its ``generate`` calls."""

    tally: Tally

    def generate(self, prompts: Sequence[Prompt], params: GenerationParams) -> list[Generation]:
        gens = super().generate(prompts, params)
        self.tally.add(gens)
        return gens


def load_prompts() -> tuple[list[str], str]:
    path = default_prompt_set_path()
    if path is not None:
        found = load_first_human_turns(path, limit=N_PROMPTS)
        if len(found) == N_PROMPTS:
            return found, f"first human turns of {path.name}"
    return FALLBACK_PROMPTS[:N_PROMPTS], "built-in prompts"


def planned_principles(content: ConstitutionContent, n: int) -> list[list[Principle]]:
    """The principles ``run_critique_loop`` samples for each prompt, round by round."""
    pool = eligible(content, None)
    return [[sample_one(pool, SEED, i, r) for r in range(1, ROUNDS + 1)] for i in range(n)]


def make_llm(engine: LocalEngine, params: GenerationParams) -> Any:
    """A minimal LangChain LLM: one ``engine.generate([prompt])`` per prompt it is given."""
    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.language_models.llms import LLM

    class EngineLLM(LLM):
        engine: Any
        params: Any

        @property
        def _llm_type(self) -> str:
            return "cstudio-local-engine"

        def _call(self, prompt: str, stop: list[str] | None = None,
                  run_manager: CallbackManagerForLLMRun | None = None, **kwargs: Any) -> str:
            p = self.params
            if stop:
                p = GenerationParams(p.max_tokens, p.temperature, p.top_p, tuple(stop), p.seed)
            [gen] = self.engine.generate([Prompt.raw(prompt)], p)
            return str(gen.text)

    return EngineLLM(engine=engine, params=params)


def make_batch_llm(engine: LocalEngine, params: GenerationParams) -> Any:
    """A batching LangChain model: ``BaseLLM._generate`` gets every prompt of a ``.batch()``
    call at once and hands them to one ``engine.generate`` (as a serving wrapper would)."""
    from langchain_core.callbacks import CallbackManagerForLLMRun
    from langchain_core.language_models.llms import BaseLLM
    from langchain_core.outputs import Generation as LCGeneration
    from langchain_core.outputs import LLMResult

    class BatchEngineLLM(BaseLLM):
        engine: Any
        params: Any

        @property
        def _llm_type(self) -> str:
            return "cstudio-local-engine-batch"

        def _generate(self, prompts: list[str], stop: list[str] | None = None,
                      run_manager: CallbackManagerForLLMRun | None = None,
                      **kwargs: Any) -> LLMResult:
            p = self.params
            if stop:
                p = GenerationParams(p.max_tokens, p.temperature, p.top_p, tuple(stop), p.seed)
            gens = self.engine.generate([Prompt.raw(x) for x in prompts], p)
            return LLMResult(generations=[[LCGeneration(text=g.text)] for g in gens])

    return BatchEngineLLM(engine=engine, params=params)


def lcel_batch_loop(llm: Any, content: ConstitutionContent, plans: list[list[Principle]],
                    prompts: list[str]) -> Callable[[], list[str]]:
    """The critique loop as LangChain's docs recommend for many inputs: LCEL ``prompt | llm``
    runnables and ``.batch()`` per step (response, then critique and revision per round),
    with our prompt texts (equal prefill) and the principles our loop samples."""
    question, critique, revision = same_prompt_templates(content)
    answer_chain = question | llm
    critique_chain = critique | llm
    revision_chain = revision | llm
    asked = [question.format(question=q) for q in prompts]

    def run() -> list[str]:
        current = answer_chain.batch([{"question": q} for q in prompts])
        for r in range(ROUNDS):
            base = [{"input_prompt": a, "output_from_model": c,
                     "critique_request": plan[r].critique_request}
                    for a, c, plan in zip(asked, current, plans, strict=True)]
            critiques = critique_chain.batch(base)
            current = revision_chain.batch([
                {**b, "critique": c, "revision_request": plan[r].revision_request}
                for b, c, plan in zip(base, critiques, plans, strict=True)])
        return [str(x) for x in current]

    return run


def same_prompt_templates(content: ConstitutionContent) -> tuple[Any, Any, Any]:
    """LangChain templates that render exactly the raw prompts of our loop: the question
    prompt, then critique and revision prompts led by our few-shot examples."""
    from langchain_core.prompts import PromptTemplate

    probe = P.critique_prompt(P.Exchange("<probe>", "<probe>"), content.principles[0],
                              content.few_shots, "raw")
    assert probe.text is not None
    shots = probe.text[:probe.text.rindex("\n\nHuman: <probe>")]
    question = PromptTemplate.from_template("\n\nHuman: {question}\n\nAssistant:")
    tail = "{input_prompt} {output_from_model}\n\nCritiqueRequest: {critique_request}\n\n"
    critique = PromptTemplate(template="{shots}" + tail + "Critique:",
                              input_variables=["input_prompt", "output_from_model",
                                               "critique_request"],
                              partial_variables={"shots": shots})
    revision = PromptTemplate(template="{shots}" + tail + "Critique: {critique}\n\n"
                              "RevisionRequest: {revision_request}\n\nRevision:",
                              input_variables=["input_prompt", "output_from_model",
                                               "critique_request", "critique",
                                               "revision_request"],
                              partial_variables={"shots": shots})
    return question, critique, revision


def build_chains(llm: Any, plans: list[list[Principle]], *, ours: ConstitutionContent | None
                 ) -> list[Any]:
    """One ConstitutionalChain per prompt, with that prompt's principles. ``ours`` given:
    use our prompt layout; otherwise LangChain's own templates (as in its docstring)."""
    from langchain_classic.chains import LLMChain
    from langchain_classic.chains.constitutional_ai.base import ConstitutionalChain
    from langchain_classic.chains.constitutional_ai.models import ConstitutionalPrinciple
    from langchain_core.prompts import PromptTemplate

    extra: dict[str, Any] = {}
    if ours is None:
        question = PromptTemplate.from_template("Q: {question} A:")
    else:
        question, extra["critique_prompt"], extra["revision_prompt"] = (
            same_prompt_templates(ours))
    qa = LLMChain(llm=llm, prompt=question)
    return [ConstitutionalChain.from_llm(
        llm=llm, chain=qa, return_intermediate_steps=True,
        constitutional_principles=[
            ConstitutionalPrinciple(name=p.key, critique_request=p.critique_request,
                                    revision_request=p.revision_request) for p in plan],
        **extra) for plan in plans]


def alternate(arms: Mapping[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall time of each arm, the arms run in turn ``repeats`` times (after one
    warm-up each), so load from other jobs falls on all arms alike."""
    for fn in arms.values():
        fn()
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(repeats):
        for name, fn in arms.items():
            began = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - began)
    return {name: statistics.median(t) for name, t in times.items()}


def run(model: Path) -> tuple[dict[str, float], str]:
    engine = CountingEngine(str(model), device="cpu", max_batch_size=N_PROMPTS, ignore_eos=True,
                            is_demo=True, display_name=TINY_MODEL_NAME)
    engine.tally = Tally()
    content = default_constitution()
    prompts, source = load_prompts()
    params = GenerationParams(max_tokens=MAX_TOKENS, temperature=0.0)
    config = LoopConfig(rounds=ROUNDS, form="raw", seed=SEED, response_params=params,
                        critique_params=params, revision_params=params)
    plans = planned_principles(content, len(prompts))
    llm = make_llm(engine, params)
    stock = build_chains(llm, plans, ours=None)
    matched = build_chains(llm, plans, ours=content)

    def ours() -> list[Any]:
        ctx = LoopContext(engine=engine, content=content, version_id=None, logger=MemoryLogger())
        return run_critique_loop(ctx, prompts, config)

    def langchain(chains: list[Any]) -> Callable[[], list[Any]]:
        return lambda: [c.invoke({"question": q}) for c, q in zip(chains, prompts, strict=True)]

    arms: dict[str, Callable[[], list[Any]]] = {
        "ours": ours, "langchain": langchain(stock), "langchain_same_prompts": langchain(matched),
        "langchain_batch": lcel_batch_loop(make_batch_llm(engine, params), content, plans,
                                           prompts)}

    # One checked run of each arm: same principles, same number of calls and tokens.
    calls = len(prompts) * (1 + 2 * ROUNDS)
    work: dict[str, Tally] = {}
    for name, fn in arms.items():
        engine.tally = Tally()
        out = fn()
        work[name] = engine.tally
        assert engine.tally.rows == calls, (name, engine.tally)
        assert engine.tally.completion_tokens == calls * MAX_TOKENS, (name, engine.tally)
        if name == "langchain_batch":  # one batched generate per step, like ours
            assert engine.tally.calls == 1 + 2 * ROUNDS, (name, engine.tally)
        elif name == "ours":  # the chains were given these principles; our loop samples them
            used = [[r.principle.key for r in chain.rounds] for chain in out]
            assert used == [[p.key for p in plan] for plan in plans]
        else:  # a "no critique needed" skip would also show in the row count above
            assert all(len(o["critiques_and_revisions"]) == ROUNDS for o in out), name
    for name, t in work.items():
        print(f"{name}: {t.calls} generate calls, {t.rows} completions, "
              f"{t.prompt_tokens / t.rows:.0f} prompt tokens/call, "
              f"{t.completion_tokens / t.rows:.0f} completion tokens/call")

    engine.tally = Tally()  # the checked tallies above are kept; later runs count here
    medians = alternate(arms, REPEATS)
    engine.close()
    figures = {
        "ours_s": medians["ours"],
        "langchain_s": medians["langchain"],
        "speedup": medians["langchain"] / medians["ours"],
        "langchain_same_prompts_s": medians["langchain_same_prompts"],
        "speedup_same_prompts": medians["langchain_same_prompts"] / medians["ours"],
        "langchain_batch_s": medians["langchain_batch"],
        "speedup_vs_batch": medians["langchain_batch"] / medians["ours"],
        "prompts": len(prompts),
        "rounds": ROUNDS,
        "max_tokens": MAX_TOKENS,
        "ours_prompt_tokens_per_call": work["ours"].prompt_tokens / calls,
        "langchain_prompt_tokens_per_call": work["langchain"].prompt_tokens / calls,
        "langchain_same_prompts_prompt_tokens_per_call":
            work["langchain_same_prompts"].prompt_tokens / calls,
        "langchain_batch_prompt_tokens_per_call": work["langchain_batch"].prompt_tokens / calls,
        "repeats": REPEATS,
        "torch_threads": THREADS,
    }
    return figures, source


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo model is built here; never download
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("LANGSMITH_TRACING", "false")  # no tracing calls to the network
    try:
        import langchain_classic  # noqa: F401  (its import turns deprecation warnings on)
        from langchain_core._api.deprecation import LangChainDeprecationWarning
    except ImportError as exc:
        raise SystemExit("This benchmark needs LangChain: pip install -e '.[bench]'") from exc
    # ConstitutionalChain and LLMChain are deprecated (still in langchain-classic 1.x).
    warnings.filterwarnings("ignore", category=LangChainDeprecationWarning)
    import torch
    from transformers.utils import logging as hf_logging

    # LangChain's prompts pass the tokenizer's 2048-token hint; the warning is noise here.
    hf_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
    torch.set_num_threads(THREADS)
    versions = (f"langchain-classic {version('langchain-classic')}, "
                f"langchain-core {version('langchain-core')}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU; {versions}")
    with tempfile.TemporaryDirectory(prefix="cstudio-bench-") as tmp:
        figures, source = run(build_tiny_model(Path(tmp) / "tiny"))
    summary = (f"critique→revision for {N_PROMPTS} prompts × {ROUNDS} rounds vs LangChain "
               f"ConstitutionalChain: {figures['speedup']:.1f}× (goal ≥ 5×); "
               f"{figures['speedup_same_prompts']:.1f}× when it is given our prompt texts "
               f"(equal prefill); vs the fair peer, an LCEL prompt-to-llm runnable with "
               f".batch() over a batching model wrapper and our prompt texts: "
               f"{figures['speedup_vs_batch']:.2f}× (goal ≥ 1.5×); {versions}; "
               f"{os.environ.get('CSTUDIO_BENCH_NOTE', 'shared machine, other work running')}")
    record("critique_loop_vs_langchain", figures, "seconds", COMMAND, summary)
    print(f"prompts: {source}")
    print(summary, figures)


if __name__ == "__main__":
    main()
