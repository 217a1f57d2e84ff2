"""A second tiny checkpoint standing in for a trained policy, registered as the output of a
succeeded SFT job (the way the job system records it: result.json names the model folder)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from backend.services.container import Services
from db import job_repo


def perturbed_checkpoint(tiny_model_path: Path, out: Path, *, seed: int = 1) -> Path:
    """The tiny model with noise added to every weight (different answers, same tokenizer)."""
    import torch
    from transformers import AutoModelForCausalLM

    if (out / "config.json").is_file():
        return out
    model = AutoModelForCausalLM.from_pretrained(str(tiny_model_path))
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.5)
    shutil.copytree(tiny_model_path, out, dirs_exist_ok=True)
    model.save_pretrained(str(out))
    return out


def reward_checkpoint(tiny_model_path: Path, out: Path) -> Path:
    """A reward model (one-output sequence classifier) on the tiny model's backbone."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    if (out / "config.json").is_file():
        return out
    model = AutoModelForSequenceClassification.from_pretrained(str(tiny_model_path), num_labels=1)
    model.save_pretrained(str(out))
    AutoTokenizer.from_pretrained(str(tiny_model_path)).save_pretrained(str(out))
    return out


def finished_sft_job(services: Services, model_dir: Path, name: str = "sl-cai sft",
                     kind: str = "sft") -> int:
    """A succeeded job (SFT unless ``kind`` says otherwise) whose output/ is ``model_dir``."""
    with services.db.write() as s:
        row = job_repo.create_job(s, kind=kind, name=name, config={}, status="succeeded",
                                  created_by="tester")
        assert row.id is not None
        job_id = row.id
        job_dir = services.settings.data_dir / "jobs" / str(job_id)
        row.artifact_dir = str(job_dir)
        s.add(row)
    job_dir.mkdir(parents=True, exist_ok=True)
    output = job_dir / "output"
    shutil.copytree(model_dir, output, dirs_exist_ok=True)
    (job_dir / "result.json").write_text(json.dumps(
        {"status": "succeeded", "outputs": {"model_dir": str(output)}}), encoding="utf-8")
    return job_id


def trained_sft_job(services: Services, tiny_model_path: Path, name: str = "sl-cai sft",
                    max_steps: int = 4, *, batch_size: int = 2, learning_rate: float = 1e-2,
                    max_length: int = 64) -> int:
    """A REAL SFT job on the tiny model (or any model folder, e.g. the converted SmolLM2: give
    it a small ``learning_rate`` so its answers stay readable): a small SL-CAI dataset, the SFT
    stage run in process through the training entry point (as the stage tests do), recorded as
    a succeeded job whose result.json names the trained model."""
    from backend.training import entry
    from tests.backend.training.conftest import insert_sl_cai_dataset

    dataset_id = insert_sl_cai_dataset(services)
    config = {"model": str(tiny_model_path), "sl_cai_dataset_id": dataset_id,
              "max_steps": max_steps, "save_steps": max_steps, "batch_size": batch_size,
              "learning_rate": learning_rate, "max_length": max_length, "device": "cpu"}
    with services.db.write() as s:
        row = job_repo.create_job(s, kind="sft", name=name, config=config, status="running",
                                  created_by="tester")
        assert row.id is not None
        job_id = row.id
        job_dir = services.settings.data_dir / "jobs" / str(job_id)
        row.artifact_dir = str(job_dir)
        s.add(row)
    job_dir.mkdir(parents=True, exist_ok=True)
    (job_dir / "job.json").write_text(json.dumps({
        "job_id": job_id, "kind": "sft", "config": config,
        "database_url": services.settings.resolved_database_url(),
        "data_dir": str(services.settings.data_dir), "seed": 0}), encoding="utf-8")
    if entry.main(["--job-dir", str(job_dir)]) != 0:
        raise AssertionError(f"the SFT stage failed: {(job_dir / 'result.json').read_text()}")
    with services.db.write() as s:
        done = job_repo.get_job(s, job_id=job_id)
        assert done is not None
        done.status = "succeeded"
        s.add(done)
    return job_id
