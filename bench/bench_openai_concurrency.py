"""Benchmark (b): OpenAICompatEngine throughput with 64 requests in flight vs one at a time.

Both run against the fake vLLM server (tests/backend/engines/fake_vllm.py, in its own process
like a real server) with a fixed 100 ms latency per request, the same prompts, and warm
connections. Sequential is one ``generate`` call per prompt; concurrent is one ``generate`` call
for the whole batch. Each is timed ``--repeats`` times, interleaved, and the medians are
recorded. The concurrent side is CPU-bound (~1.3 ms of engine CPU and ~1.2 ms of fake-server
CPU per request), so a busy machine lowers it; the ideal is 64×.

    python -m bench.bench_openai_concurrency
"""

from __future__ import annotations

import argparse
import statistics
import time

from backend.engines.base import GenerationParams, Prompt
from backend.engines.openai_compat import OpenAICompatEngine
from bench.fake_vllm import FakeVLLMProcess
from bench.results import record

LATENCY_S = 0.1
IN_FLIGHT = 64


def run(concurrent_n: int, sequential_n: int, repeats: int) -> dict[str, float]:
    params = GenerationParams(max_tokens=16)
    prompts = [Prompt.raw(f"Prompt number {i}: say something.") for i in range(concurrent_n)]
    with FakeVLLMProcess(latency_s=LATENCY_S) as fake:
        engine = OpenAICompatEngine(fake.url, fake.model, max_in_flight=IN_FLIGHT)
        try:
            engine.generate(prompts[:IN_FLIGHT], params)  # warm-up: open the connections
            sequential_rps, concurrent_rps = [], []
            for _ in range(repeats):
                start = time.perf_counter()
                for prompt in prompts[:sequential_n]:
                    engine.generate([prompt], params)
                sequential_rps.append(sequential_n / (time.perf_counter() - start))

                fake.reset()
                start = time.perf_counter()
                gens = engine.generate(prompts, params)
                concurrent_rps.append(concurrent_n / (time.perf_counter() - start))
                server_max = fake.stats()["max_in_flight"]
                assert len(gens) == concurrent_n and server_max <= IN_FLIGHT
        finally:
            engine.close()
    print("sequential runs (req/s):", ", ".join(f"{r:.1f}" for r in sequential_rps))
    print("concurrent runs (req/s):", ", ".join(f"{r:.1f}" for r in concurrent_rps))
    sequential = statistics.median(sequential_rps)
    concurrent = statistics.median(concurrent_rps)
    return {"sequential_rps": sequential, "concurrent_rps": concurrent,
            "speedup": concurrent / sequential, "in_flight": IN_FLIGHT,
            "latency_ms": LATENCY_S * 1000, "server_max_in_flight": server_max,
            "concurrent_requests": concurrent_n, "sequential_requests": sequential_n,
            "repeats": repeats}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--concurrent", type=int, default=256)
    parser.add_argument("--sequential", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-record", action="store_true", help="print only")
    args = parser.parse_args()
    figures = run(args.concurrent, args.sequential, args.repeats)
    summary = (f"{IN_FLIGHT} in flight vs sequential at {LATENCY_S * 1000:.0f} ms latency: "
               f"{figures['speedup']:.1f}× (goal ≥ 30×)")
    for key, value in figures.items():
        print(f"{key:>22}: {value:.2f}")
    print(summary)
    if not args.no_record:
        path = record(name="openai_concurrency", figures=figures, unit="requests/s and ratio",
                      command="python -m bench.bench_openai_concurrency", summary=summary)
        print(f"recorded {path}")


if __name__ == "__main__":
    main()
