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
* langchain_batch_same_engine (was the fair peer, kept as history): LCEL ``prompt | llm``
  runnables with ``.batch()`` per step over a batching wrapper of OUR ``LocalEngine``
  (``BaseLLM._generate`` hands the whole batch to one ``engine.generate``), with our prompt
  texts: the same 5 batched ``generate`` calls on the same engine, so the ratio
  ``speedup_vs_batch_same_engine`` only measures orchestration (LangChain's per-step cost).
* langchain_hf (the fair peer, issue 15 point 5): what a LangChain user with a local
  transformers model picks: LangChain's own integration ``langchain_huggingface``
  ``HuggingFacePipeline`` over a transformers ``text-generation`` pipeline (the same model
  folder, loaded again with the same dtype, and the same tokenizer object: left padding, pad
  token set; ``batch_size`` on both the pipeline and the wrapper; greedy; the same
  ``max_new_tokens`` and ``min_new_tokens`` equal to it, so it decodes exactly as many tokens
  as our EOS-ignoring engine; ``return_full_text=False``), driven as LangChain's docs
  recommend for many inputs: LCEL ``prompt | llm`` and ``.batch()`` per step (response, then
  critique and revision per round), with our prompt texts and the principles our loop samples.
  ``speedup_vs_batch`` is its time over ours. Its batch size is the peer's best on a
  validation set (HH-RLHF first human turns 17–32, never the reported prompts), chosen from
  ``--peer-batch-sizes`` by one timed run each (after a warm-up); its tokens are counted on
  the model's ``generate`` calls and checked like ours.

``--model`` picks the model: ``tiny`` (the demo model, built into a temporary directory; the
default and the recorded ``critique_loop_vs_langchain`` row), ``smollm2`` (SmolLM2-135M-Instruct,
converted offline as the tests do; row ``critique_loop_vs_langchain_smollm2``, only ours and
the two batched LangChain arms: the one-prompt-at-a-time chains take too long on a CPU) or a
model folder (nothing recorded). On a trained model our loop's raw-layout stop strings may end
rows early; the work check below then fails rather than report unequal work. Not yet run on
SmolLM2: from critiques_vs_hf_generate (one 16-row critique call: ours 30 s, stock HF 75 s)
its full run (validation sweep, checks, warm-up, 3 repeats) would take about two hours on the
shared 2-CPU machine.

The engine ignores EOS, so every call decodes exactly ``MAX_TOKENS`` tokens on every arm
(random weights could otherwise stop early and make the arms do different amounts of work);
this is checked (the HF peer gets ``min_new_tokens``). Prefill work is not equal on the stock
arm: LangChain's critique and revision templates carry their own, longer few-shot examples,
so its prompts have about twice as many tokens as ours; the mean prompt tokens per call of
each arm are recorded. The stock chain also parses critiques ("No critique needed" would skip
a revision; the call count is checked).

Where the ratio comes from: LangChain's own overhead is under 1 ms per model call, so it is
what our engine gains from being handed a batch. (1) The critique and revision prompts of a
batch begin with the same few-shot examples (about 1,300 of 1,500 tokens); ``LocalEngine``
reads that prefix once per batch and lets every row attend to a single copy of it (prefill
and decode), where a one-prompt call must read all of it every time. (2) Rows are read
right-padded without an attention mask (PyTorch's fused causal kernel) and decoded together
from one cache that grows in place. An engine that also cached prefixes *across* calls
(vLLM's automatic prefix caching) would give the one-prompt-at-a-time chains part of (1) too;
``LocalEngine`` shares prefixes only within a call. Against the HF peer the batching is the
same (one pipeline call per step at its best batch size), so the ratio is (1) and (2) against
stock transformers ``generate`` on a left-padded batch with an attention mask: every row
reads and attends to its own copy of the shared few-shot prefix, in prefill and in each decode
step (as in ``critiques_vs_hf_generate``). The LCEL arms bind our raw-layout stop strings, as
our loop sends them; ``HuggingFacePipeline`` ignores ``stop`` (it neither stops nor cuts), so
the peer is spared that check.

One torch thread, as in bench_local_engine (set CSTUDIO_BENCH_THREADS to change). Arms are run
alternately, after one warm-up each, and the median of the repeats is reported.

Needs the ``bench`` extra: pip install -e '.[bench]' (langchain-classic,
langchain-huggingface).

Run: python -m bench.bench_vs_langchain [--model tiny|smollm2|DIR] [--repeats 3]
     [--peer-batch-sizes 1,2,4,8,16]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from importlib.metadata import version
from pathlib import Path
from typing import Any

from backend.cai import prompts as P
from backend.cai.constitution import ConstitutionContent, Principle
from backend.cai.critique_loop import LoopConfig, LoopContext, run_critique_loop
from backend.cai.default_constitution import default_constitution
from backend.cai.sampling import eligible, item_key, round_principle
from backend.cai.steplog import MemoryLogger
from backend.engines.base import Generation, GenerationParams, Prompt
from backend.engines.local import LocalEngine
from backend.engines.tiny import TINY_MODEL_NAME, build_tiny_model
from backend.services.prompt_sets import default_prompt_set_path, load_first_human_turns
from bench.prompts import FALLBACK_PROMPTS
from bench.results import record

COMMAND = "python -m bench.bench_vs_langchain"
ROOT = Path(__file__).resolve().parents[1]
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

    def reset(self) -> None:
        self.calls = self.rows = self.prompt_tokens = self.completion_tokens = 0

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


def validation_prompts() -> list[str]:
    """Other prompts, for tuning the peer: the next 16 first human turns (never the reported
    ones), or the built-in prompts reworded when the HH-RLHF sample is absent."""
    path = default_prompt_set_path()
    if path is not None:
        found = load_first_human_turns(path, limit=2 * N_PROMPTS)[N_PROMPTS:]
        if len(found) == N_PROMPTS:
            return found
    return [f"A friend asked me this: {p}" for p in FALLBACK_PROMPTS[:N_PROMPTS]]


def planned_principles(content: ConstitutionContent, prompts: Sequence[str]
                       ) -> list[list[Principle]]:
    """The principles ``run_critique_loop`` samples for each prompt, round by round (from the
    seed and the prompt's stable key)."""
    pool = eligible(content, None)
    return [[round_principle(pool, SEED, item_key(q), r) for r in range(1, ROUNDS + 1)]
            for q in prompts]


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


def make_hf_pipeline_llm(model_dir: Path, engine: LocalEngine, batch_size: int,
                         max_tokens: int) -> tuple[Any, Tally]:
    """LangChain's own transformers integration, as its docs build it: ``HuggingFacePipeline``
    over a ``text-generation`` pipeline, on the same model folder (a fresh copy of the model:
    ours patches its attention) and the same tokenizer object (left padding, pad token set).
    Greedy; ``min_new_tokens`` equal to ``max_new_tokens`` so it decodes as many tokens as our
    EOS-ignoring engine. The returned tally counts the work of the model's ``generate`` calls."""
    import torch
    from langchain_huggingface import HuggingFacePipeline
    from transformers import AutoModelForCausalLM, pipeline

    tok = engine._tok
    assert tok.padding_side == "left" and tok.pad_token_id is not None
    model: Any = AutoModelForCausalLM.from_pretrained(
        str(model_dir), dtype=engine._model.dtype, local_files_only=True)
    model.eval()
    tally = Tally()
    generate = model.generate

    def counted(*args: Any, **kwargs: Any) -> Any:
        out = generate(*args, **kwargs)
        ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
        new = out[:, ids.shape[1]:]
        tally.calls += 1
        tally.rows += int(ids.shape[0])
        tally.prompt_tokens += int(mask.sum())
        tally.completion_tokens += int(new.numel())  # no row stops early: min_new_tokens
        return out

    model.generate = counted
    pipe = pipeline("text-generation", model=model, tokenizer=tok, device=torch.device("cpu"),
                    batch_size=batch_size, max_new_tokens=max_tokens,
                    min_new_tokens=max_tokens, do_sample=False, return_full_text=False,
                    pad_token_id=tok.pad_token_id)
    return HuggingFacePipeline(pipeline=pipe, batch_size=batch_size), tally


def tune_peer_batch_size(model_dir: Path, engine: LocalEngine, content: ConstitutionContent,
                         sizes: Sequence[int]) -> tuple[int, dict[int, float]]:
    """The HF peer's fastest pipeline batch size on the validation prompts (one timed run of
    the whole loop per size, after a warm-up): the peer gets its best setting, found on
    prompts that are not reported."""
    prompts = validation_prompts()
    plans = planned_principles(content, prompts)
    timed: dict[int, float] = {}
    for size in sizes:
        llm, _ = make_hf_pipeline_llm(model_dir, engine, size, MAX_TOKENS)
        loop = lcel_batch_loop(llm, content, plans, prompts)
        loop()
        began = time.perf_counter()
        loop()
        timed[size] = time.perf_counter() - began
        print(f"peer batch size {size}: {timed[size]:.2f} s on the validation prompts")
    return min(timed, key=lambda k: timed[k]), timed


def lcel_batch_loop(llm: Any, content: ConstitutionContent, plans: list[list[Principle]],
                    prompts: list[str]) -> Callable[[], list[str]]:
    """The critique loop as LangChain's docs recommend for many inputs: LCEL ``prompt | llm``
    runnables and ``.batch()`` per step (response, then critique and revision per round),
    with our prompt texts (equal prefill), our stop strings and the principles our loop
    samples."""
    question, critique, revision = same_prompt_templates(content)
    # the stop strings our loop sends in the raw layout (invented turns), asked for the
    # LangChain way; HuggingFacePipeline does not apply them (its _generate ignores ``stop``)
    llm = llm.bind(stop=list(P.RAW_STOPS))
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


@dataclass
class Options:
    model: Path
    label: str  # "tiny", "smollm2" or the folder
    repeats: int = REPEATS
    peer_batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16)
    chains: bool = True  # the one-prompt-at-a-time ConstitutionalChain arms


def run(opts: Options) -> tuple[dict[str, float], str]:
    engine = CountingEngine(str(opts.model), device="cpu", max_batch_size=N_PROMPTS,
                            ignore_eos=True, is_demo=opts.label == "tiny",
                            display_name=TINY_MODEL_NAME if opts.label == "tiny" else None)
    engine.tally = Tally()
    content = default_constitution()
    prompts, source = load_prompts()
    params = GenerationParams(max_tokens=MAX_TOKENS, temperature=0.0)
    config = LoopConfig(rounds=ROUNDS, form="raw", seed=SEED, response_params=params,
                        critique_params=params, revision_params=params)
    plans = planned_principles(content, prompts)
    peer_size, tuning = tune_peer_batch_size(opts.model, engine, content, opts.peer_batch_sizes)
    hf_llm, hf_tally = make_hf_pipeline_llm(opts.model, engine, peer_size, MAX_TOKENS)

    def ours() -> list[Any]:
        ctx = LoopContext(engine=engine, content=content, version_id=None, logger=MemoryLogger())
        return run_critique_loop(ctx, prompts, config)

    def langchain(chains: list[Any]) -> Callable[[], list[Any]]:
        return lambda: [c.invoke({"question": q}) for c, q in zip(chains, prompts, strict=True)]

    arms: dict[str, Callable[[], list[Any]]] = {"ours": ours}
    if opts.chains:
        llm = make_llm(engine, params)
        arms["langchain"] = langchain(build_chains(llm, plans, ours=None))
        arms["langchain_same_prompts"] = langchain(build_chains(llm, plans, ours=content))
    arms["langchain_batch_same_engine"] = lcel_batch_loop(make_batch_llm(engine, params),
                                                          content, plans, prompts)
    arms["langchain_hf"] = lcel_batch_loop(hf_llm, content, plans, prompts)

    # One checked run of each arm: same principles, same number of calls and tokens.
    calls = len(prompts) * (1 + 2 * ROUNDS)
    steps = 1 + 2 * ROUNDS
    work: dict[str, Tally] = {}
    outputs: dict[str, list[Any]] = {}
    for name, fn in arms.items():
        engine.tally = Tally()
        hf_tally.reset()
        out = outputs[name] = fn()
        tally = work[name] = replace(hf_tally) if name == "langchain_hf" else engine.tally
        assert tally.rows == calls, (name, tally)
        assert tally.completion_tokens == calls * MAX_TOKENS, (name, tally)
        if name == "langchain_batch_same_engine":  # one batched generate per step, like ours
            assert tally.calls == steps, (name, tally)
        elif name == "langchain_hf":  # the pipeline's batches: ceil(16 / batch size) a step
            assert tally.calls == steps * -(-len(prompts) // peer_size), (name, tally)
            assert engine.tally.calls == 0, "the HF peer must not use our engine"
        elif name == "ours":  # the chains were given these principles; our loop samples them
            used = [[r.principle.key for r in chain.rounds] for chain in out]
            assert used == [[p.key for p in plan] for plan in plans]
        else:  # a "no critique needed" skip would also show in the row count above
            assert all(len(o["critiques_and_revisions"]) == ROUNDS for o in out), name
    for name, t in work.items():
        print(f"{name}: {t.calls} generate calls, {t.rows} completions, "
              f"{t.prompt_tokens / t.rows:.0f} prompt tokens/call, "
              f"{t.completion_tokens / t.rows:.0f} completion tokens/call")
    final_ours = [c.rounds[-1].revision.strip() for c in outputs["ours"]]
    same_texts = sum(a == str(b).strip()
                     for a, b in zip(final_ours, outputs["langchain_hf"], strict=True))

    engine.tally = Tally()  # the checked tallies above are kept; later runs count here
    medians = alternate(arms, opts.repeats)
    engine.close()
    figures: dict[str, float] = {"ours_s": medians["ours"]}
    if opts.chains:
        figures.update({
            "langchain_s": medians["langchain"],
            "speedup": medians["langchain"] / medians["ours"],
            "langchain_same_prompts_s": medians["langchain_same_prompts"],
            "speedup_same_prompts": medians["langchain_same_prompts"] / medians["ours"]})
    figures.update({
        "langchain_hf_s": medians["langchain_hf"],
        "speedup_vs_batch": medians["langchain_hf"] / medians["ours"],
        "langchain_batch_same_engine_s": medians["langchain_batch_same_engine"],
        "speedup_vs_batch_same_engine": medians["langchain_batch_same_engine"] / medians["ours"],
        "peer_batch_size": peer_size,
        **{f"peer_validation_bs{k}_s": v for k, v in tuning.items()},
        "final_texts_identical_hf": same_texts,
        "prompts": len(prompts),
        "rounds": ROUNDS,
        "max_tokens": MAX_TOKENS,
        **{f"{name}_prompt_tokens_per_call": t.prompt_tokens / calls
           for name, t in work.items()},
        "repeats": opts.repeats,
        "torch_threads": THREADS,
    })
    return figures, source


def load_average() -> str:
    try:
        return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    ap.add_argument("--model", default="tiny",
                    help="tiny (the demo model, recorded), smollm2 (recorded as "
                         "critique_loop_vs_langchain_smollm2) or a model folder (not recorded)")
    ap.add_argument("--repeats", type=int, default=REPEATS)
    ap.add_argument("--peer-batch-sizes", default="1,2,4,8,16",
                    help="the HF peer's pipeline batch sizes tried on the validation prompts")
    return ap.parse_args(argv)


def resolve_model(name: str, tmp: Path) -> Path:
    if name == "tiny":
        return build_tiny_model(tmp / "tiny")
    if name == "smollm2":
        from backend.engines.gguf_models import ensure_converted, require_smollm2_gguf

        # the converted model that bench_smollm2 and the tests share
        return ensure_converted(require_smollm2_gguf(), ROOT / "test-artifacts" / "smollm2")
    path = Path(name).expanduser()
    if not (path / "config.json").is_file():
        raise SystemExit(f"--model {name!r}: give tiny, smollm2 or a folder with config.json")
    return path


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo model is built here; never download
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("LANGSMITH_TRACING", "false")  # no tracing calls to the network
    try:
        import langchain_classic  # noqa: F401  (its import turns deprecation warnings on)
        import langchain_huggingface  # noqa: F401
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
                f"langchain-core {version('langchain-core')}, "
                f"langchain-huggingface {version('langchain-huggingface')}, "
                f"transformers {version('transformers')}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU; {versions}")
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="cstudio-bench-") as tmp:
        model = resolve_model(args.model, Path(tmp))
        sizes = tuple(int(x) for x in args.peer_batch_sizes.split(","))
        opts = Options(model=model, label=args.model, repeats=args.repeats,
                       peer_batch_sizes=sizes, chains=args.model == "tiny")
        figures, source = run(opts)
    load = f"{load_before} before, {load_average()} after"
    what = "the demo model" if args.model == "tiny" else f"{args.model}"
    parts = [f"{what}: critique→revision for {N_PROMPTS} prompts × {ROUNDS} rounds"]
    if "speedup" in figures:
        parts.append(f"vs LangChain ConstitutionalChain: {figures['speedup']:.1f}× (goal ≥ 5×); "
                     f"{figures['speedup_same_prompts']:.1f}× when it is given our prompt "
                     "texts (equal prefill)")
    parts.append(
        f"vs the fair peer, LangChain's HuggingFacePipeline (transformers text-generation "
        f"pipeline, batch size {figures['peer_batch_size']:.0f}, its best on validation "
        f"prompts) driven by LCEL prompt-to-llm .batch() with our prompt texts: "
        f"{figures['langchain_hf_s']:.2f} s vs ours {figures['ours_s']:.2f} s: "
        f"{figures['speedup_vs_batch']:.2f}× (goal ≥ 1.5×); the same LCEL .batch() over a "
        f"wrapper of our own engine (orchestration only): "
        f"{figures['speedup_vs_batch_same_engine']:.2f}×")
    parts.append(versions)
    parts.append(os.environ.get("CSTUDIO_BENCH_NOTE", "shared machine, other work running")
                 + f" ({load})")
    summary = "; ".join(parts)
    command = COMMAND if args.model == "tiny" else f"{COMMAND} --model {args.model}"
    if args.repeats != REPEATS:
        command += f" --repeats {args.repeats}"
    if args.peer_batch_sizes != "1,2,4,8,16":
        command += f" --peer-batch-sizes {args.peer_batch_sizes}"
    if args.model in ("tiny", "smollm2"):
        name = "critique_loop_vs_langchain" + ("" if args.model == "tiny" else "_smollm2")
        record(name, figures, "seconds", command, summary)
    print(f"prompts: {source}")
    print(summary, figures)


if __name__ == "__main__":
    main()
