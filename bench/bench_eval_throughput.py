"""Agreement-run throughput: verdicts/s of a 20,000-pair run when the model answers at once.

A temporary SQLite store (``container.start``, as ``cstudio serve`` opens it) gets 20,000 pair
items (bulk SQL inserts) and one no-CoT, both-orders, k=1 evaluation, which
``services.evaluations.run`` then judges end to end: prompts built, every variant written to the
critique log (with its FTS index and record hash), every verdict stored with the run's progress.

The model is an in-process engine that answers every ``score_choices`` call at once (~0 ms
latency, the same ``ChoiceScores`` shape the OpenAI-compatible engine returns, ``prompt_sent``
rendered the same way). An HTTP fake server cannot stand in here: the HTTP client alone costs
~1.3 ms of CPU per request on this machine (bench_openai_concurrency), i.e. a ceiling of
~400 verdicts/s for two requests per verdict, which would measure the HTTP stack instead of the
studio. (A real vLLM server spends its own CPU/GPU, not the studio's.)

Figures: ``verdicts_per_s`` (items judged per wall second) and ``studio_share``: the share of the
run's wall time *not* spent inside the engine's calls, i.e. spent in the studio's own code
(prompt building, labelling, logging, hashing, SQL); ``cpu_s`` and ``verdicts_per_cpu_s``: the
process's CPU time over the run (all threads), which other jobs on a shared machine disturb far
less than wall time. The temporary database is removed.

Run: python -m bench.bench_eval_throughput [--pairs 20000]
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import insert

from backend.access import local_admin
from backend.engines.base import ChoiceScores, EngineInfo, Prompt
from backend.engines.scripted import ScriptedEngine
from backend.heap import settle_heap
from backend.services.container import start
from backend.services.evaluations import EvaluationConfig
from backend.settings import Settings
from bench.results import record
from db.dataset_models import PairDataset, PairItemRow

COMMAND = "python -m bench.bench_eval_throughput"
ACTOR = local_admin("bench")


@dataclass
class InstantEngine(ScriptedEngine):
    """The product's scripted engine, answering at once; counts the time spent inside its own
    scoring calls. p(A) varies with the prompt's length (0.25 … 0.74)."""

    info: EngineInfo = field(
        default_factory=lambda: EngineInfo(kind="openai_compat", model="bench/instant"))
    record_calls: bool = False
    busy_s: float = 0.0
    calls: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, n: int, prompt_text: str) -> str:
        return "Because."

    def p_a(self, text: str) -> float:
        return 0.25 + (len(text) % 50) / 100.0

    def score_choices(self, prompts: Sequence[Prompt], choices: Sequence[str]
                      ) -> list[ChoiceScores]:
        t0 = time.perf_counter()
        out = super().score_choices(prompts, choices)
        with self._lock:
            self.busy_s += time.perf_counter() - t0
            self.calls += 1
        return out


def _dataset(services: object, n: int) -> int:
    db = services.db  # type: ignore[attr-defined]
    with db.write() as s:
        ds = PairDataset(name="bench-throughput", source_format="bench", source_name="synthetic",
                         source_sha256="0" * 64, item_count=n, created_by="bench")
        s.add(ds)
        s.flush()
        assert ds.id is not None
        dataset_id = ds.id
    table = PairItemRow.__table__  # type: ignore[attr-defined]
    with db.engine.begin() as conn:
        for lo in range(0, n, 10_000):
            conn.execute(insert(table), [{
                "dataset_id": dataset_id, "position": i,
                "prompt": f"Question {i}: my neighbour parks across my driveway. What can I do?",
                "response_a": f"Answer {i}: leave a polite note, then talk to them in person.",
                "response_b": f"Answer {i}: let the air out of their tyres so they learn.",
                "human_label": float(i % 2), "swapped": False, "meta": {},
                "content_hash": hashlib.sha256(f"tp-{i}".encode()).hexdigest(),
            } for i in range(lo, min(n, lo + 10_000))])
    return dataset_id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pairs", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--no-settle", action="store_true",
                        help="leave the garbage collector as it is (the code before gc.freeze)")
    parser.add_argument("--note", default="shared machine, other work running")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="cstudio-bench-tp-"))
    try:
        services = start(Settings(data_dir=tmp, engine="tiny", user="bench"))
        engine = InstantEngine()
        services.engines.use(engine, "benchmark: instant in-process engine")
        dataset_id = _dataset(services, args.pairs)
        head = services.constitutions.list_all()[0].head.id
        run = services.evaluations.create(
            dataset_id=dataset_id, version_id=head, actor=ACTOR,
            config=EvaluationConfig(batch_size=args.batch_size))
        if not args.no_settle:
            settle_heap()  # as `cstudio serve` and `cstudio eval run` do once started
        start_t, start_cpu = time.perf_counter(), time.process_time()
        info = services.evaluations.run(run.id, actor=ACTOR)
        wall = time.perf_counter() - start_t
        cpu = time.process_time() - start_cpu  # every thread of this process
        assert info.status == "done" and info.done_count == args.pairs, info
        records = services.critique_log.count()
        services.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    rate = args.pairs / wall
    share = 1.0 - engine.busy_s / wall
    per_cpu_s = args.pairs / cpu
    print(f"{args.pairs} verdicts ({records} log records) in {wall:.2f} s: {rate:.0f} verdicts/s; "
          f"engine {engine.busy_s:.2f} s, studio share {share:.1%}; CPU {cpu:.2f} s "
          f"({per_cpu_s:.0f} verdicts per CPU second)")
    record("eval_throughput", {"verdicts_per_s": rate, "studio_share": share,
                               "pairs": args.pairs, "wall_s": wall, "cpu_s": cpu,
                               "verdicts_per_cpu_s": per_cpu_s},
           "verdicts/s, share",
           f"{COMMAND} --pairs {args.pairs}",
           f"{args.pairs}-pair no-CoT both-orders run, in-process instant engine, SQLite; "
           f"goal >= 5,000 verdicts/s ({args.note})")


if __name__ == "__main__":
    main()
