"""Overhead of the job system over running the same TRL trainer directly in a script.

Both arms train SFT (TRL SFTTrainer, completion-only loss) on the same tiny demo model, the
same 64 (prompt, revision) rows, the same batch size, sequence length, learning rate and number
of steps, with one checkpoint at the end, on CPU, with the same torch thread count:

* direct: ``python -m bench.sft_direct`` — a plain script, timed from process start to exit.
* job system: ``JobService.create`` then ``Worker.run_one`` — the worker writes the accelerate
  config, starts the guard and ``accelerate launch -m backend.training.entry`` (the real sft
  stage, which also reads the rows from the database and writes the provenance manifest and
  metrics.jsonl), tails the metrics into the database and sends heartbeats; timed from
  create to the job's row saying ``succeeded``.

* stage alone (for the breakdown): ``python -m backend.training.entry --job-dir`` on a copy
  of the job's job.json — the sft stage without the worker and launcher.

The arms alternate (direct, job, stage, direct, job, stage, ...) so machine load falls on all
alike, and each arm's CPU time (user + system, of the process tree) is recorded beside its wall
time, since on a machine shared with other work wall time moves with the load. The overhead is
(median job − median direct) / median direct. Goal: at most 10 %. The stage arm splits it into
what the stage adds (database reads, manifest, metrics file) and what the job system adds
(launch, guard, heartbeats, metrics tailing).

Both arms get exactly the same training arguments (the direct script sets bf16/fp16 off as the
stage does, and the job reports to no tracker, as the direct script: the stage's default,
TensorBoard at every logged step, is a feature the direct script does not have).
The benchmark runs at 1 and 2 torch threads (``--threads 1,2``), with at least 5
alternating repeats each; it records each thread count's medians and range, and ``overhead`` =
the median over the thread counts of (median job − median direct) / median direct.

Run: python -m bench.bench_job_overhead [--steps 300] [--repeats 5] [--threads 1,2]
[--no-stage-arm]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from backend.access import local_admin
from backend.engines.tiny import build_tiny_model
from backend.jobs.worker import Worker
from backend.services.container import build_services
from backend.settings import Settings
from backend.threads import THREADS_ENV
from bench.results import record
from db import training_repo

COMMAND = "python -m bench.bench_job_overhead"
ROOT = Path(__file__).resolve().parent.parent
ROWS = 64


def sample_rows() -> list[tuple[str, str]]:
    topics = ["cycling at night", "a job interview", "baking bread", "a tax form",
              "a broken bike chain", "learning Spanish", "a noisy neighbour", "saving money"]
    return [(f"How should I handle {topics[i % len(topics)]}? (case {i})",
             f"Here is a careful, honest answer about {topics[i % len(topics)]}: take it one "
             f"step at a time, ask for help when needed, and stay safe. Case {i}.")
            for i in range(ROWS)]


def cpu_s() -> float:
    """CPU seconds of this process and of its waited-for children (and theirs), so far."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def _spread(values: list[float]) -> str:
    return f"{min(values):.1f}–{max(values):.1f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", default="1,2", help="torch thread counts, e.g. 1,2")
    parser.add_argument("--no-stage-arm", action="store_true",
                        help="leave out the stage-alone arm (the breakdown): a third less time")
    parser.add_argument("--note", default="machine shared with other work",
                        help="how loaded the machine was, for the row")
    args = parser.parse_args()
    thread_counts = [int(t) for t in str(args.threads).split(",") if t.strip()]
    tmp = Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    model = build_tiny_model(tmp / "tiny")
    settings = Settings(data_dir=tmp / "data", user="bench", database_url=None,
                        job_heartbeat_s=2.0, job_launcher="accelerate")
    services = build_services(settings)
    rows = sample_rows()
    with services.db.write() as s:
        ds = training_repo.create_dataset(
            s, kind="sl_cai", name="bench", job_id=None, constitution_version_id=None,
            model="bench", config={}, source="bench", source_sha256="0" * 64, created_by="b")
        assert ds.id is not None
        dataset_id = ds.id
        training_repo.insert_sl_cai_samples(s, dataset_id=dataset_id, rows=[
            {"position": i, "prompt": p, "response": "", "revision": r, "chain_id": f"c{i}",
             "record_ids": [], "principle_keys": ["k"], "content_hash": f"{i:064d}"}
            for i, (p, r) in enumerate(rows)])
    rows_file = tmp / "rows.json"
    rows_file.write_text(json.dumps([
        {"prompt": [{"role": "user", "content": p}],
         "completion": [{"role": "assistant", "content": r}]} for p, r in rows]))
    config = {"model": str(model), "sl_cai_dataset_id": dataset_id, "max_steps": args.steps,
              "save_steps": args.steps, "batch_size": args.batch_size, "max_length": 128,
              "learning_rate": 1e-4, "device": "cpu", "mixed_precision": "no",
              # the direct script reports to nothing (report_to=[]); the stage's default is
              # TensorBoard, whose per-step event writing made the job arm train slower
              "report_to": "none"}
    figures: dict[str, float] = {"steps": args.steps, "repeats": args.repeats}
    parts: list[str] = []
    overheads: list[float] = []
    for threads in thread_counts:
        # Every arm gets the same thread count: the worker passes its Settings.torch_threads to
        # the stage (default: half the cores, i.e. 1 here), so it is set per thread count too.
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), PYTHONPATH=str(ROOT),
                   **{THREADS_ENV: str(threads)})
        os.environ["OMP_NUM_THREADS"] = str(threads)
        worker = Worker(settings.model_copy(update={"torch_threads": threads}), services.db)
        times: dict[str, list[float]] = {"direct": [], "job": [], "stage": []}
        cpu: dict[str, list[float]] = {"direct": [], "job": [], "stage": []}
        for i in range(args.repeats):
            out = tmp / f"direct-{threads}-{i}"
            start, cpu0 = time.perf_counter(), cpu_s()
            subprocess.run([sys.executable, "-m", "bench.sft_direct", "--rows", str(rows_file),
                            "--model", str(model), "--out", str(out), "--steps",
                            str(args.steps), "--batch-size", str(args.batch_size),
                            "--max-length", "128"], check=True, cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times["direct"].append(time.perf_counter() - start)
            cpu["direct"].append(cpu_s() - cpu0)

            start, cpu0 = time.perf_counter(), cpu_s()
            job = services.jobs.create("sft", config, actor=local_admin("bench"))
            assert worker.run_one() == job.id
            info = services.jobs.get(job.id)
            times["job"].append(time.perf_counter() - start)
            cpu["job"].append(cpu_s() - cpu0)
            assert info.status == "succeeded", info.error
            steps = services.jobs.metrics(job.id).last_step
            assert steps == args.steps, steps
            line = (f"{threads} thread(s), round {i + 1}: wall: direct "
                    f"{times['direct'][-1]:.1f} s, job system {times['job'][-1]:.1f} s")
            if args.no_stage_arm:
                print(line, flush=True)
                continue
            stage_dir = tmp / f"stage-{threads}-{i}"
            stage_dir.mkdir()
            job_json = json.loads((Path(info.artifact_dir) / "job.json").read_text())
            (stage_dir / "job.json").write_text(json.dumps({**job_json, "job_id": None}))
            start, cpu0 = time.perf_counter(), cpu_s()
            subprocess.run([sys.executable, "-m", "backend.training.entry", "--job-dir",
                            str(stage_dir)], check=True, cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            times["stage"].append(time.perf_counter() - start)
            cpu["stage"].append(cpu_s() - cpu0)
            print(f"{line}, stage alone {times['stage'][-1]:.1f} s", flush=True)
        direct, job_time = statistics.median(times["direct"]), statistics.median(times["job"])
        stage = statistics.median(times["stage"]) if times["stage"] else None
        overhead = (job_time - direct) / direct
        overheads.append(overhead)
        cpu_direct, cpu_job = statistics.median(cpu["direct"]), statistics.median(cpu["job"])
        t = f"t{threads}_"
        if stage is not None:
            figures.update({t + "stage_s": stage,
                            t + "job_system_share": (job_time - stage) / direct})
        figures.update({t + "direct_s": direct, t + "job_s": job_time,
                        t + "overhead": overhead,
                        t + "cpu_overhead": (cpu_job - cpu_direct) / cpu_direct,
                        t + "direct_min_s": min(times["direct"]),
                        t + "direct_max_s": max(times["direct"]),
                        t + "job_min_s": min(times["job"]), t + "job_max_s": max(times["job"])})
        parts.append(f"{threads} thread(s): job {job_time:.1f} s (range "
                     f"{_spread(times['job'])}) vs direct {direct:.1f} s (range "
                     f"{_spread(times['direct'])}), {overhead:+.1%}")
    figures["overhead"] = statistics.median(overheads) if len(overheads) > 1 else overheads[0]
    verdict = "met" if max(overheads) <= 0.10 else "NOT met"
    summary = (f"SFT {args.steps} steps (batch {args.batch_size}) on the tiny model, same "
               f"training arguments in both arms (bf16 off, no tracker), medians of "
               f"{args.repeats} "
               f"alternating repeats: " + "; ".join(parts) + f" (goal ≤ 10 %, {verdict}); "
               f"{args.note}")
    print(summary)
    record("job_overhead", figures, "seconds and ratio",
           COMMAND + f" --steps {args.steps} --repeats {args.repeats} --batch-size "
           f"{args.batch_size} --threads {args.threads}"
           + (" --no-stage-arm" if args.no_stage_arm else ""), summary)
    services.close()


if __name__ == "__main__":
    main()
