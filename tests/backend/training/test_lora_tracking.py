"""LoRA (PEFT) and TensorBoard together for SFT, DPO and RL (issue 17 point 2 checks that the
existing options work for each): the stage trains adapters, saves a merged model with its
model card, and writes TensorBoard scalars in the job folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend.services.container import Services
from tests.backend.training.conftest import (
    MakeJob,
    insert_ai_pairs,
    insert_sl_cai_dataset,
    run_job,
)

COMMON = {"max_steps": 1, "save_steps": 1, "batch_size": 2, "max_length": 64,
          "device": "cpu", "lora": True, "lora_r": 4, "lora_alpha": 8,
          "report_to": "tensorboard", "learning_rate": 1e-3}


def _scalars(folder: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return set(events.Tags()["scalars"])


def _config(kind: str, services: Services, model: Path, reward: Path) -> dict[str, Any]:
    if kind == "sft":
        return {"model": str(model), "sl_cai_dataset_id": insert_sl_cai_dataset(services, 4)}
    if kind == "dpo":
        return {"model": str(model), "preference_dataset_id": insert_ai_pairs(services, 4)}
    return {"model": str(model), "algorithm": "grpo", "num_generations": 2, "max_prompts": 2,
            "max_completion_length": 4, "log_rollouts": 0,
            "reward_models": [{"model": str(reward), "weight": 1.0}]}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["sft", "dpo", "rl"])
def test_lora_with_tensorboard_trains_merges_and_logs(kind: str, services: Services,
                                                     make_job: MakeJob, tiny_model_path: Path,
                                                     tiny_reward_path: Path) -> None:
    job_dir = make_job(kind, {**_config(kind, services, tiny_model_path, tiny_reward_path),
                              **COMMON})
    assert run_job(job_dir) == 0
    output = job_dir / "output"
    assert (output / "config.json").is_file()
    assert not (output / "adapter_config.json").exists()  # adapters merged into the model
    assert (output / "README.md").is_file()
    assert any(tag.startswith("train/") for tag in _scalars(job_dir / "tensorboard"))
