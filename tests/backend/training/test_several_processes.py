"""What would quietly run wrong on several processes is refused before a job starts: the
compact PPO (no gradient synchronisation), the data stages (one engine, rank 0 only) and
LoRA with ZeRO-3 (adapters cannot be merged from shards); GRPO/RLOO reward models go on each
rank's own GPU."""

from __future__ import annotations

from pathlib import Path

import pytest

from backend.errors import ValidationError
from backend.services.container import Services
from backend.training import registry, trainer_common
from backend.training.context import StageContext
from tests.backend.training.conftest import insert_sl_cai_dataset


def _problems(services: Services, kind: str, config: dict[str, object]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        registry.validate(kind, config, db=services.db, data_dir=services.settings.data_dir)
    return info.value.problems


def _ok(services: Services, kind: str, config: dict[str, object]) -> dict[str, object]:
    return registry.validate(kind, config, db=services.db, data_dir=services.settings.data_dir)


def test_ppo_on_several_processes_is_refused(services: Services, tiny_model_path: Path):
    rl = {"model": "tiny", "reward_models": f"{tiny_model_path}=1"}
    for extra in ({"num_processes": 2}, {"num_nodes": 2, "main_process_ip": "10.0.0.1"},
                  {"deepspeed_stage": 2}):
        problems = _problems(services, "rl", {**rl, "algorithm": "ppo", **extra})
        assert any(p.startswith("num_processes: PPO runs on one GPU") for p in problems)
    assert _ok(services, "rl", {**rl, "algorithm": "grpo", "num_processes": 2,
                                "batch_size": 4})["num_processes"] == 2
    assert _ok(services, "rl", {**rl, "algorithm": "ppo"})["num_processes"] == 1


def test_data_stages_on_several_processes_are_refused(services: Services):
    for kind in ("sl_cai_data", "preference_data"):
        problems = _problems(services, kind, {"num_processes": 2})
        assert any(p.startswith("num_processes: the") and "runs on one process" in p
                   for p in problems), problems


def test_lora_with_zero3_is_refused(services: Services):
    dataset = insert_sl_cai_dataset(services, 2)
    problems = _problems(services, "sft", {"model": "tiny", "sl_cai_dataset_id": dataset,
                                           "lora": True, "deepspeed_stage": 3})
    assert any(p.startswith("lora: LoRA adapters cannot be merged") for p in problems)
    assert _ok(services, "sft", {"model": "tiny", "sl_cai_dataset_id": dataset,
                                 "lora": True, "deepspeed_stage": 2})


def test_each_rank_uses_its_own_gpu(services: Services, monkeypatch: pytest.MonkeyPatch):
    ctx = StageContext(job_dir=services.settings.data_dir, job_id=1, kind="rl",
                       config={"device": "cuda"}, db=services.db,
                       data_dir=services.settings.data_dir, seed=0)
    monkeypatch.setattr(trainer_common, "use_cpu", lambda _ctx: False)
    monkeypatch.setenv("LOCAL_RANK", "3")
    assert trainer_common.rank_device(ctx) == "cuda:3"
    monkeypatch.delenv("LOCAL_RANK")
    assert trainer_common.rank_device(ctx) == "cuda:0"
    monkeypatch.setattr(trainer_common, "use_cpu", lambda _ctx: True)
    assert trainer_common.rank_device(ctx) == "cpu"


class _FakeAccelerator:
    def __init__(self, main: bool) -> None:
        self.is_main_process = main
        self.waited = False

    def unwrap_model(self, model: object) -> object:
        return model

    def wait_for_everyone(self) -> None:
        self.waited = True


class _FakeTrainer:
    """Stands in for a DeepSpeed ZeRO-3 trainer: its module's own weights are empty shards,
    so only ``save_model`` (which gathers them) may write the final model."""

    def __init__(self, main: bool) -> None:
        self.accelerator = _FakeAccelerator(main)
        self.model = object()  # no save_pretrained: saving the module directly would fail
        self.saved_to: list[str] = []

    def save_model(self, output_dir: str) -> None:
        self.saved_to.append(output_dir)


class _FakeTokenizer:
    def __init__(self) -> None:
        self.saved: list[str] = []

    def save_pretrained(self, path: str) -> None:
        self.saved.append(path)


@pytest.mark.parametrize("main", [True, False])
def test_final_save_goes_through_trainer_save_model_on_every_rank(services: Services,
                                                                  main: bool):
    ctx = StageContext(job_dir=services.settings.data_dir / "jobs" / "1", job_id=1, kind="sft",
                       config={}, db=services.db, data_dir=services.settings.data_dir, seed=0)
    trainer, tokenizer = _FakeTrainer(main), _FakeTokenizer()
    assert trainer_common.save_final(ctx, trainer, tokenizer) == str(ctx.output_dir)
    assert trainer.saved_to == [str(ctx.output_dir)]  # a collective: every rank calls it
    assert tokenizer.saved == ([str(ctx.output_dir)] if main else [])  # one writer
    assert trainer.accelerator.waited
