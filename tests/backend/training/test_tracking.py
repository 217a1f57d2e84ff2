"""Experiment tracking per job (``report_to``): TensorBoard by default, its event files in the
job folder, from the HF-Trainer stages and from the compact PPO; none writes nothing; trackio
is refused while it is not installed; the job page says where the logs are."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from backend.access import local_admin
from backend.errors import ValidationError
from backend.services.container import Services
from backend.training import registry
from studio.training_handlers import TrainingHandlers, tracking_line
from tests.backend.training.conftest import MakeJob, insert_sl_cai_dataset, run_job


def _scalars(folder: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder))
    events.Reload()
    return set(events.Tags()["scalars"])


def _sft(tiny_model_path: Path, dataset_id: int, **extra: object) -> dict[str, object]:
    return {"model": str(tiny_model_path), "sl_cai_dataset_id": dataset_id, "max_steps": 2,
            "save_steps": 2, "batch_size": 2, "max_length": 64, "device": "cpu", **extra}


def test_sft_writes_tensorboard_logs_in_the_job_folder_by_default(
        services: Services, make_job: MakeJob, tiny_model_path: Path):
    job_dir = make_job("sft", _sft(tiny_model_path, insert_sl_cai_dataset(services)))
    assert run_job(job_dir) == 0
    assert any(name.startswith("train/loss") for name in _scalars(job_dir / "tensorboard"))
    assert not list((job_dir / "checkpoints").glob("runs"))  # not in the default place


def test_report_to_none_writes_no_tracking_logs(services: Services, make_job: MakeJob,
                                                tiny_model_path: Path):
    job_dir = make_job("sft", _sft(tiny_model_path, insert_sl_cai_dataset(services),
                                   report_to="none"))
    assert run_job(job_dir) == 0
    assert not (job_dir / "tensorboard").exists()


def test_ppo_writes_tensorboard_scalars(services: Services, make_job: MakeJob,
                                        tiny_model_path: Path, tiny_reward_path: Path):
    job_dir = make_job("rl", {"model": str(tiny_model_path), "algorithm": "ppo",
                              "reward_models": [{"model": str(tiny_reward_path), "weight": 1.0}],
                              "max_steps": 1, "save_steps": 1, "batch_size": 2,
                              "max_completion_length": 4, "max_prompts": 4, "ppo_epochs": 1,
                              "max_length": 64, "device": "cpu"})
    assert run_job(job_dir) == 0
    assert {"train/reward", "train/kl", "train/loss"} <= _scalars(job_dir / "tensorboard")


@pytest.mark.skipif(importlib.util.find_spec("trackio") is not None,
                    reason="trackio is installed here")
def test_trackio_is_refused_while_not_installed(services: Services, tiny_model_path: Path):
    with pytest.raises(ValidationError) as info:
        registry.validate("sft", _sft(tiny_model_path, insert_sl_cai_dataset(services),
                                      report_to="trackio"),
                          db=services.db, data_dir=services.settings.data_dir)
    assert any(p.startswith("report_to: trackio is not installed") for p in info.value.problems)


def test_job_page_says_where_the_logs_are(services: Services):
    job = services.jobs.create("sft", {"model": "tiny", "device": "cpu", "max_steps": 1,
                                       "sl_cai_dataset_id": insert_sl_cai_dataset(services)},
                               actor=local_admin("tester"))
    text = TrainingHandlers(services).status(job.id)
    assert "Tracking (tensorboard)" in text and "tensorboard --logdir" in text
    assert f"{job.artifact_dir}/tensorboard" in text
    assert tracking_line({"report_to": "none"}, "/x") == ""
