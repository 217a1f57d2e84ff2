"""Two processes on CPU (``accelerate launch --multi_gpu --num_processes 2`` with no GPU
visible: accelerate's MULTI_CPU on the gloo backend), for SFT, the reward model and DPO: the
ranks end with identical weights (gradients synchronised), one checkpoint and one final
model are written, and the saved model is the ranks' model. PPO and the data stages are
refused on several processes at validation (tests/backend/training/test_registry.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from backend.services.container import Services
from tests.backend.training.conftest import (
    MakeJob,
    import_human_pairs,
    insert_ai_pairs,
    insert_sl_cai_dataset,
    result,
)
from tests.backend.training.ddp_probe import weights_digest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow

COMMON = {"max_steps": 2, "save_steps": 2, "batch_size": 2, "max_length": 64,
          "device": "cpu", "num_processes": 2, "report_to": "none"}


def launch_two(job_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "CUDA_VISIBLE_DEVICES": "",
           "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
         "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
         "--dynamo_backend", "no", "--main_process_port", str(port),
         "-m", "tests.backend.training.ddp_probe", "--job-dir", str(job_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)


def check_two_ranks(job_dir: Path, port: int, reload: str) -> None:
    run = launch_two(job_dir, port)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "MULTI_CPU" in run.stdout + run.stderr or (job_dir / "rank-1.sha256").is_file()
    digests = {p.name: p.read_text() for p in job_dir.glob("rank-*.sha256")}
    assert set(digests) == {"rank-0.sha256", "rank-1.sha256"}  # two processes trained
    assert len(set(digests.values())) == 1  # with identical weights
    assert [p.name for p in (job_dir / "checkpoints").iterdir()
            if p.is_dir()] == ["checkpoint-2"]  # one checkpoint
    out = result(job_dir)
    assert out["summary"]["global_step"] == 2
    manifest = json.loads((job_dir / "manifest.json").read_text())
    assert manifest["status"] == "succeeded"
    import transformers

    saved = getattr(transformers, reload).from_pretrained(out["outputs"]["model_dir"])
    assert weights_digest(saved) == digests["rank-0.sha256"]  # the one model written


def test_sft_on_two_processes(services: Services, make_job: MakeJob, tiny_model_path: Path):
    job_dir = make_job("sft", {"model": str(tiny_model_path),
                               "sl_cai_dataset_id": insert_sl_cai_dataset(services), **COMMON})
    check_two_ranks(job_dir, 29631, "AutoModelForCausalLM")


def test_reward_model_on_two_processes(services: Services, make_job: MakeJob,
                                       tiny_model_path: Path):
    job_dir = make_job("reward", {"model": str(tiny_model_path), "label_source": "mix",
                                  "preference_dataset_id": insert_ai_pairs(services),
                                  "pair_dataset_id": import_human_pairs(services),
                                  "eval_pairs": 4, **COMMON})
    check_two_ranks(job_dir, 29632, "AutoModelForSequenceClassification")


def test_dpo_on_two_processes(services: Services, make_job: MakeJob, tiny_model_path: Path):
    job_dir = make_job("dpo", {"model": str(tiny_model_path),
                               "preference_dataset_id": insert_ai_pairs(services), **COMMON})
    check_two_ranks(job_dir, 29633, "AutoModelForCausalLM")
