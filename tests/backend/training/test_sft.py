from __future__ import annotations

import json
from pathlib import Path

from backend.services.container import Services
from tests.backend.training.conftest import (
    MakeJob,
    assert_manifest_complete,
    import_human_pairs,
    insert_sl_cai_dataset,
    metrics_lines,
    result,
    run_job,
    state_dict_changed,
)


def _config(tiny_model_path: Path, dataset_id: int, **extra: object) -> dict[str, object]:
    return {"model": str(tiny_model_path), "sl_cai_dataset_id": dataset_id, "max_steps": 4,
            "save_steps": 2, "batch_size": 2, "learning_rate": 1e-3, "max_length": 64,
            "device": "cpu", **extra}


def test_sft_trains_saves_and_reloads(services: Services, make_job: MakeJob,
                                      tiny_model_path: Path):
    from transformers import AutoModelForCausalLM

    dataset_id = insert_sl_cai_dataset(services)
    helpful = import_human_pairs(services, 6)
    job_dir = make_job("sft", _config(tiny_model_path, dataset_id, helpful_dataset_id=helpful,
                                      helpful_samples=3))
    assert run_job(job_dir) == 0
    out = result(job_dir)
    model_dir = Path(out["outputs"]["model_dir"])
    assert out["summary"]["examples"] == 8 + 3 and out["summary"]["helpful_examples"] == 3
    assert out["summary"]["global_step"] == 4
    assert state_dict_changed(tiny_model_path, model_dir)
    AutoModelForCausalLM.from_pretrained(str(job_dir / "checkpoints" / "checkpoint-4"))
    AutoModelForCausalLM.from_pretrained(str(model_dir))
    lines = metrics_lines(job_dir)
    assert [x["step"] for x in lines if "loss" in x][:4] == [1, 2, 3, 4]
    assert all("learning_rate" in x for x in lines if "loss" in x)
    assert lines[-1]["progress"] == 1.0
    assert assert_manifest_complete(job_dir, datasets=("sl_cai", "helpful"))["models"]["base"]


def test_sft_resumes_from_last_checkpoint(services: Services, make_job: MakeJob,
                                          tiny_model_path: Path):
    dataset_id = insert_sl_cai_dataset(services)
    job_dir = make_job("sft", _config(tiny_model_path, dataset_id, max_steps=2))
    assert run_job(job_dir) == 0
    assert (job_dir / "checkpoints" / "checkpoint-2").is_dir()
    job = json.loads((job_dir / "job.json").read_text())
    job["config"]["max_steps"] = 4  # the same job, continued further
    (job_dir / "job.json").write_text(json.dumps(job))
    assert run_job(job_dir) == 0
    steps = [x["step"] for x in metrics_lines(job_dir) if "loss" in x]
    assert steps[:2] == [1, 2] and steps[2:] == [3, 4]  # continued, not restarted
    manifest = assert_manifest_complete(job_dir)
    assert manifest["resumed_from"] == "checkpoint-2"
    assert len(manifest["attempts"]) == 1
