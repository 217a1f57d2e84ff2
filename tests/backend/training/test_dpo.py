from __future__ import annotations

from pathlib import Path

from backend.services.container import Services
from backend.training.dpo import preference_rows
from backend.training.inputs import AiPair
from tests.backend.training.conftest import (
    MakeJob,
    assert_manifest_complete,
    insert_ai_pairs,
    metrics_lines,
    result,
    run_job,
    state_dict_changed,
)


def test_preference_rows_pick_the_preferred_side_and_drop_unsure_pairs():
    pairs = [AiPair("q", "a", "b", 0.9), AiPair("q", "a", "b", 0.2), AiPair("q", "a", "b", 0.5),
             AiPair("q", "a", "b", 0.55)]
    rows = preference_rows(pairs, min_confidence=0.1)
    assert [(r["chosen"][0]["content"], r["rejected"][0]["content"]) for r in rows] == \
        [("a", "b"), ("b", "a")]


def test_dpo_trains_on_ai_pairs(services: Services, make_job: MakeJob, tiny_model_path: Path):
    from transformers import AutoModelForCausalLM

    dataset_id = insert_ai_pairs(services, 8)
    job_dir = make_job("dpo", {"model": str(tiny_model_path), "preference_dataset_id": dataset_id,
                               "max_steps": 3, "save_steps": 3, "batch_size": 2,
                               "learning_rate": 1e-3, "max_length": 64, "device": "cpu"})
    assert run_job(job_dir) == 0
    model_dir = Path(result(job_dir)["outputs"]["model_dir"])
    assert state_dict_changed(tiny_model_path, model_dir)
    AutoModelForCausalLM.from_pretrained(str(model_dir))
    AutoModelForCausalLM.from_pretrained(str(job_dir / "checkpoints" / "checkpoint-3"))
    lines = [x for x in metrics_lines(job_dir) if "loss" in x]
    assert [x["step"] for x in lines] == [1, 2, 3]
    assert assert_manifest_complete(job_dir, datasets=("preference",))["models"]["policy"]
