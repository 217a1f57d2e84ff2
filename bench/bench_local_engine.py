"""Local engine benchmarks on the demo model (built into a temporary directory; no network).

(a) local_batched_critiques: 32 critique completions (64 tokens, greedy) in one left-padded
    batch vs one prompt at a time, on the same engine. Both arms ignore EOS so every
    completion is exactly 64 tokens (random weights could otherwise stop some early and make
    the comparison unfair); the batched texts are checked against the sequential ones.
(c) verdict_scoring_vs_generation: 64 no-CoT A/B verdicts read from one scoring forward pass
    (``score_choices``) vs generating a 16-token answer per item (batched the same way) and
    parsing "(A)"/"(B)" out of it. Both arms use the engine's best path for their job: the
    generation arm reads its prompts the same way the scoring arm does (right-padded, no
    attention mask, see ``backend/engines/local_prefill.py``) in batches as large as allowed
    (decode steps are per batch), then decodes; the scoring arm reads them in tighter batches
    (no decode follows, so smaller batches with less padding cost nothing extra). The speedup
    is therefore about (prefill + 15 decode steps) / prefill, and depends on the hardware: on
    a CPU running a 64-wide model a decode step of 64 rows costs little next to reading 500
    prompt tokens per row, so the ratio stays near 2x; on a GPU a decode step is bound by
    memory bandwidth and launch overhead and costs far more than its share of FLOPs.

Both run on one torch thread: on this 2-CPU machine, shared with other jobs, a second thread
only adds synchronisation to a 64-wide model (per-token steps measured ~8x slower with 2 threads
under load) and makes the timings noisy. Set CSTUDIO_BENCH_THREADS to try another count.

Run: python -m bench.bench_local_engine
"""

from __future__ import annotations

import gzip
import json
import os
import re
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from backend.cai.default_constitution import default_constitution
from backend.cai.labeling import PairItem
from backend.cai.prompts import choice_prompt, shots_of
from backend.cai.sampling import eligible, label_principles
from backend.engines.base import ChatMessage, Engine, GenerationParams, Prompt
from backend.engines.local import LocalEngine
from backend.engines.tiny import TINY_MODEL_NAME, build_tiny_model
from bench.prompts import FALLBACK_PROMPTS
from bench.results import record

COMMAND = "python -m bench.bench_local_engine"
HH_RLHF = (Path(__file__).resolve().parents[2] / "shared" / "data" / "hh-rlhf"
           / "harmless-base-test.first2000.jsonl.gz")
ASSISTANT = "\n\nAssistant:"
THREADS = int(os.environ.get("CSTUDIO_BENCH_THREADS", "1"))
CRITIQUE_REQUEST = ("Identify specific ways in which the assistant's last response is harmful, "
                    "unethical, racist, sexist, toxic, dangerous, or illegal.")
QUESTIONS = FALLBACK_PROMPTS[:8]
ANSWERS = [
    "Sure, here is a detailed method that works on most doors.",
    "Of course. Start by thanking them, then describe the problem and ask for a date.",
    "You could spread a rumour about them; that usually works well.",
    "Mix flour, water, salt and yeast, knead, let it rise, shape it and bake it hot.",
]


def critique_prompts(n: int) -> list[Prompt]:
    """Critique requests after a human/assistant exchange, of varied lengths."""
    prompts = []
    for i in range(n):
        question = " ".join(QUESTIONS[(i + k) % len(QUESTIONS)] for k in range(1 + i % 4))
        prompts.append(Prompt.chat(
            ("user", question),
            ("assistant", ANSWERS[i % len(ANSWERS)]),
            ("user", f"Critique request: {CRITIQUE_REQUEST}"),
        ))
    return prompts


def verdict_items(n: int, skip: int = 0) -> list[tuple[str, str, str]]:
    """(conversation, response A, response B) from the shared HH-RLHF sample (real lengths),
    or built-in examples when the file is absent; ``skip``: leave out the first usable ones
    (a validation split)."""
    path = HH_RLHF
    items: list[tuple[str, str, str]] = []
    n += skip
    if path.is_file():
        with gzip.open(path, "rt", encoding="utf-8") as fh:
            for line in fh:
                row = json.loads(line)
                cut_c, cut_r = row["chosen"].rfind(ASSISTANT), row["rejected"].rfind(ASSISTANT)
                context = row["chosen"][:cut_c].replace("\n\nHuman: ", "", 1).strip()
                a = row["chosen"][cut_c + len(ASSISTANT):].strip()
                b = row["rejected"][cut_r + len(ASSISTANT):].strip()
                if a and b and len(context) < 3000:
                    items.append((context, a, b))
                if len(items) == n:
                    return items[skip:]
    return [(QUESTIONS[i % len(QUESTIONS)], ANSWERS[i % len(ANSWERS)],
             ANSWERS[(i + 1) % len(ANSWERS)]) for i in range(skip, n)]


@dataclass
class VerdictWorkload:
    """The two arms' prompts: ``scored`` (the studio's verdict prompts, ending in
    ``The answer is: (``) and ``asked`` (the same question, a written answer requested)."""

    scored: list[Prompt]
    asked: list[Prompt]
    chars_mean: float

    def generate_and_parse(self, engine: Engine, params: GenerationParams) -> list[str | None]:
        """Generate the asked answers and parse "(A)"/"(B)" out of each (None: not found)."""
        out = []
        for g in engine.generate(self.asked, params):
            found = VERDICT_RE.search(g.text)
            out.append(found.group(1) if found else None)
        return out


VERDICT_RE = re.compile(r"\(([AB])\)")


def verdict_workload(engine: Engine, items: list[tuple[str, str, str]], *,
                     product: bool = False) -> VerdictWorkload:
    """``product=False``: one prompt per item, the first principle, no few-shot examples.
    ``product=True``: exactly what ``label_pairs`` sends with the default constitution and its
    default config (no CoT, both orders, one principle sampled per pair, the constitution's
    ``choice`` few-shot examples, chat form)."""
    content = default_constitution()
    if product:
        pool = eligible(content)
        shots = [f for _, f in shots_of(content.few_shots, "choice")]
        scored = [choice_prompt(c, *((a, b) if order == "AB" else (b, a)),
                                label_principles(pool, 1, 0, PairItem(c, a, b).stable_key())[0],
                                "chat", shots=shots)
                  for c, a, b in items for order in ("AB", "BA")]
    else:
        scored = [choice_prompt(c, a, b, content.principles[0], "chat") for c, a, b in items]
    # The asked form drops the final "The answer is: (" turn and requests the answer instead.
    asked = [Prompt(messages=(*p.messages[:-2], ChatMessage(
        "user", p.messages[-2].content + "\n\nAnswer with (A) or (B).")))
        for p in scored if p.messages]
    chars = statistics.mean(len(engine.render_prompt(p)) for p in scored)  # type: ignore[attr-defined]
    return VerdictWorkload(scored, asked, chars)


def alternated(arms: Sequence[Callable[[], object]], rounds: int, *, warm_up: bool = True
               ) -> list[float]:
    """Median wall times of ``arms`` run in turn ``rounds`` times (after one warm-up of each
    unless the caller has just run them), so load from other jobs on the machine falls on
    every arm alike."""
    if warm_up:
        for fn in arms:
            fn()
    times: list[list[float]] = [[] for _ in arms]
    for _ in range(rounds):
        for arm, fn in enumerate(arms):
            began = time.perf_counter()
            fn()
            times[arm].append(time.perf_counter() - began)
    return [statistics.median(t) for t in times]


def side_by_side(first: Callable[[], object], second: Callable[[], object], rounds: int,
                 *, warm_up: bool = True) -> tuple[float, float]:
    """``alternated`` for two arms."""
    a, b = alternated([first, second], rounds, warm_up=warm_up)
    return a, b


def bench_batched_critiques(model: Path) -> dict[str, float]:
    engine = LocalEngine(str(model), device="cpu", max_batch_size=32, ignore_eos=True,
                         is_demo=True, display_name=TINY_MODEL_NAME)
    prompts = critique_prompts(32)
    params = GenerationParams(max_tokens=64, temperature=0.0)
    batched = engine.generate(prompts, params)
    sequential = [engine.generate([p], params)[0] for p in prompts]
    batched_s, sequential_s = side_by_side(
        lambda: engine.generate(prompts, params),
        lambda: [engine.generate([p], params) for p in prompts], rounds=3)
    engine.close()
    same = sum(b.text == s.text for b, s in zip(batched, sequential, strict=True))
    assert all(g.completion_tokens == 64 for g in batched + sequential)
    print(f"(a) batched texts identical to sequential: {same}/32")
    return {"batched_s": batched_s, "sequential_s": sequential_s,
            "speedup": sequential_s / batched_s, "torch_threads": THREADS}


def bench_verdicts(model: Path) -> dict[str, float]:
    engine = LocalEngine(str(model), device="cpu", max_batch_size=64, is_demo=True,
                         display_name=TINY_MODEL_NAME)
    items = verdict_items(64)
    # The studio's verdict prompts, scored after "The answer is: (", against the same question
    # asked for a written answer that is then parsed.
    work = verdict_workload(engine, items)
    params = GenerationParams(max_tokens=16, temperature=0.0)
    parsed = work.generate_and_parse(engine, params)
    tokens = work.chars_mean
    score_s, generate_s = side_by_side(
        lambda: engine.score_choices(work.scored, ["A", "B"]),
        lambda: work.generate_and_parse(engine, params), rounds=7)
    engine.close()
    print(f"(c) generate+parse found a verdict in {sum(v is not None for v in parsed)}/64 "
          "(random weights rarely write one; a real model would)")
    return {"score_s": score_s, "generate_s": generate_s, "speedup": generate_s / score_s,
            "torch_threads": THREADS, "items": len(items), "prompt_chars_mean": tokens}


def main() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # the demo model is built here; never download
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import torch

    torch.set_num_threads(THREADS)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    with tempfile.TemporaryDirectory(prefix="cstudio-bench-") as tmp:
        model = build_tiny_model(Path(tmp) / "tiny")
        a = bench_batched_critiques(model)
        c = bench_verdicts(model)
    summary_a = f"32 critiques batched vs one at a time: {a['speedup']:.1f}× (goal ≥ 8×)"
    summary_c = ("no-CoT verdicts: one scoring pass vs generate+parse: "
                 f"{c['speedup']:.1f}× (goal ≥ 3×)")
    record("local_batched_critiques", a, "seconds", COMMAND, summary_a)
    record("verdict_scoring_vs_generation", c, "seconds", COMMAND, summary_c)
    print(summary_a, a)
    print(summary_c, c)


if __name__ == "__main__":
    main()
