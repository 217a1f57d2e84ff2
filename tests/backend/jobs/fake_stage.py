"""A stand-in training stage for job-system tests: it follows the job-directory contract of
docs/training-contract.md without torch (so tests are fast) and is launched through the same
worker code path as the real stages.

Config: ``max_steps``, ``step_seconds`` (sleep per step), ``save_steps`` (checkpoint every N),
``fail_at`` (exit 3 at that step), ``spawn_child`` (start a sleeping grandchild, as dataloader
workers would), ``ignore_sigterm`` (only SIGKILL ends it). Each step appends
``{"step", "time", "loss", "learning_rate"}`` to metrics.jsonl; checkpoints are
``checkpoints/checkpoint-<step>/state.json``; a restart resumes after the latest checkpoint.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path


def latest_checkpoint(root: Path) -> int:
    steps = [int(p.name.split("-", 1)[1]) for p in root.glob("checkpoint-*")
             if p.name.split("-", 1)[1].isdigit()]
    return max(steps, default=0)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--job-dir", required=True)
    args = parser.parse_args()
    job_dir = Path(args.job_dir)
    job = json.loads((job_dir / "job.json").read_text())
    cfg = job["config"]
    max_steps = int(cfg.get("max_steps", 5))
    step_s = float(cfg.get("step_seconds", 0.05))
    save_steps = int(cfg.get("save_steps", 1))
    fail_at = cfg.get("fail_at")
    ckpt_root = job_dir / "checkpoints"
    start = latest_checkpoint(ckpt_root)
    print(f"fake stage: job {job['job_id']} attempt {job.get('attempt')} starts after step "
          f"{start} (pid {os.getpid()}, accelerate={os.environ.get('ACCELERATE_USE_CPU')})",
          flush=True)
    if cfg.get("ignore_sigterm"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if cfg.get("spawn_child"):
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    with (job_dir / "metrics.jsonl").open("a", encoding="utf-8") as metrics:
        for step in range(start + 1, max_steps + 1):
            time.sleep(step_s)
            if fail_at is not None and step == int(fail_at):
                print(f"fake stage: failing at step {step} as asked", flush=True)
                return 3
            metrics.write(json.dumps({"step": step, "time": time.time(), "loss": 1.0 / step,
                                      "learning_rate": 1e-3}) + "\n")
            metrics.flush()
            if step % save_steps == 0:
                ckpt = ckpt_root / f"checkpoint-{step}"
                ckpt.mkdir(parents=True, exist_ok=True)
                (ckpt / "state.json").write_text(json.dumps({"step": step}))
    (job_dir / "output").mkdir(exist_ok=True)
    (job_dir / "output" / "weights.txt").write_text(f"trained {max_steps} steps")
    result: dict[str, object] = {"outputs": {"model_dir": str(job_dir / "output")},
                                 "summary": {"steps": max_steps}}
    if cfg.get("result_version") is not None:  # a result.json as a newer studio writes it
        result["format_version"] = cfg["result_version"]
    (job_dir / "result.json").write_text(json.dumps(result))
    print("fake stage: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
