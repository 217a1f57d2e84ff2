"""A trained model is saved with a model card (README.md in output/): the constitution's name,
version and content hash, the datasets it read, its metrics and how to reproduce it."""

from __future__ import annotations

from pathlib import Path

from backend.services.container import Services
from backend.training import model_card
from tests.backend.training.conftest import (
    MakeJob,
    insert_sl_cai_dataset,
    manifest,
    result,
    run_job,
)

MANIFEST = {
    "job_id": 7, "kind": "rl", "config": {"model": "job:5", "max_steps": 2, "beta": 0.05},
    "config_sha256": "c" * 64, "git_commit": "a" * 40,
    "constitution": {"version_id": 3, "number": 2, "name": "Default CAI",
                     "content_hash": "f" * 64},
    "datasets": {"preference": {"id": 4, "pairs": 12}},
    "models": {"policy": {"ref": "job:5", "location": "/data/jobs/5/output"}},
    "packages": {"torch": "2.13.0", "trl": "0.1"},
}


def test_the_card_names_constitution_datasets_metrics_and_commands() -> None:
    card = model_card.render(MANIFEST, {"train_loss": 0.25, "steps": 2, "curve": [1, 2]})
    assert card.startswith("---\n") and "constitution_sha256: " + "f" * 64 in card
    assert "- name: Default CAI" in card and "- version: 2 (id 3)" in card
    assert "`" + "f" * 64 + "`" in card
    assert '- preference: `{"id": 4, "pairs": 12}`' in card
    assert "- train_loss: 0.25" in card and "curve" not in card
    assert "cstudio job submit rl --config config.yaml" in card
    assert "beta: 0.05" in card and "model: job:5" in card
    assert "a" * 40 in card


def test_an_sft_run_writes_its_card_beside_the_model(services: Services, make_job: MakeJob,
                                                     tiny_model_path: Path) -> None:
    dataset_id = insert_sl_cai_dataset(services, n=4)
    job_dir = make_job("sft", {"model": str(tiny_model_path), "sl_cai_dataset_id": dataset_id,
                               "max_steps": 1, "save_steps": 1, "batch_size": 2,
                               "max_length": 64, "device": "cpu", "report_to": "none"})
    assert run_job(job_dir) == 0
    card = (job_dir / "output" / "README.md").read_text()
    assert f'"id": {dataset_id}' in card
    assert manifest(job_dir)["config_sha256"] in card
    assert "cstudio job submit sft" in card
    assert "constitution" in result(job_dir)["outputs"] or \
        manifest(job_dir)["constitution"] is None
