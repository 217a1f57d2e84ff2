from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.errors import ValidationError
from backend.services.container import Services
from backend.training import models, registry
from tests.backend.training.conftest import (
    AS_TESTER,
    MakeJob,
    insert_sl_cai_dataset,
    manifest,
    run_job,
)


def _problems(services: Services, kind: str, config: dict[str, object]) -> list[str]:
    with pytest.raises(ValidationError) as info:
        registry.validate(kind, config, db=services.db, data_dir=services.settings.data_dir)
    return info.value.problems


def test_defaults_are_filled_in_and_the_constitution_head_is_chosen(services: Services):
    dataset_id = insert_sl_cai_dataset(services, 2)
    cfg = registry.validate("sft", {"model": "tiny", "sl_cai_dataset_id": str(dataset_id),
                                    "deepspeed_stage": ""},
                            db=services.db, data_dir=services.settings.data_dir)
    assert cfg["deepspeed_stage"] is None
    assert cfg["sl_cai_dataset_id"] == dataset_id and cfg["max_steps"] == 100
    assert cfg["device"] == "auto" and cfg["lora"] is False
    data = registry.validate("sl_cai_data", {}, db=services.db,
                             data_dir=services.settings.data_dir)
    assert isinstance(data["constitution_version_id"], int)


def test_bad_configs_are_refused_naming_the_field(services: Services, tmp_path: Path):
    problems = _problems(services, "sft", {
        "model": str(tmp_path / "no-such-model"), "sl_cai_dataset_id": 4242, "max_steps": -3,
        "learning_rate": "fast", "batch_size": 0, "lora": "maybe", "bogus": 1})
    text = "\n".join(problems)
    assert "max_steps: must be a positive integer" in text
    assert "learning_rate: must be a number" in text
    assert "batch_size: must be a positive integer" in text
    assert "lora: must be true or false" in text
    assert "bogus: unknown field for sft" in text
    problems = _problems(services, "sft", {"model": str(tmp_path / "no-such-model"),
                                           "sl_cai_dataset_id": 4242})
    assert any(p.startswith("model: ") and "does not exist" in p for p in problems)
    assert "sl_cai_dataset_id: no sl_cai dataset 4242" in "\n".join(problems)


def test_a_gpu_that_does_not_exist_is_refused(services: Services):
    import torch

    missing = torch.cuda.device_count() + 3
    problems = _problems(services, "dpo", {"model": "tiny", "preference_dataset_id": 1,
                                           "device": f"cuda:{missing}"})
    assert any(p.startswith(f"device: cuda:{missing} does not exist") for p in problems)
    assert any(p.startswith("device: 'tpu' is not") for p in _problems(
        services, "dpo", {"model": "tiny", "preference_dataset_id": 1, "device": "tpu"}))


def test_missing_datasets_and_stage_rules(services: Services):
    text = "\n".join(_problems(services, "reward", {"model": "tiny", "label_source": "mix"}))
    assert "preference_dataset_id: is required" in text
    assert "pair_dataset_id: is required" in text
    assert _problems(services, "sft", {"model": "tiny"}) == ["sl_cai_dataset_id: is required"]
    text = "\n".join(_problems(services, "rl", {"model": "tiny", "reward_models": "",
                                                "prompt_set": "/nope.jsonl"}))
    assert "reward_models: " in text
    text = "\n".join(_problems(services, "rl", {"model": "tiny", "reward_models": "job:999=1",
                                                "prompt_set": "/nope.jsonl", "batch_size": 3}))
    assert "reward_models[0]: " in text
    assert "prompt_set: '/nope.jsonl' is not a prompt set id" in text  # never a path
    assert "batch_size: must be a multiple of num_generations" in text
    with pytest.raises(ValidationError, match="Unknown job kind"):
        registry.validate("ppo", {}, db=services.db, data_dir=services.settings.data_dir)


def test_reward_models_text_form(services: Services, tiny_model_path: Path):
    cfg = registry.validate("rl", {"model": "tiny", "reward_models":
                                   f"{tiny_model_path}=2, {tiny_model_path} * 0.5"},
                            db=services.db, data_dir=services.settings.data_dir)
    assert cfg["reward_models"] == [{"model": str(tiny_model_path), "weight": 2.0},
                                    {"model": str(tiny_model_path), "weight": 0.5}]


def test_kinds_describe_every_stage_form():
    stages = {s.kind: s for s in registry.kinds()}
    assert set(stages) == {"sl_cai_data", "sft", "preference_data", "reward", "rl", "dpo"}
    for info in stages.values():
        names = [f.name for f in info.fields]
        assert len(names) == len(set(names)), info.kind
        assert {"model", "seed", "device", "mixed_precision", "num_processes"} <= set(names)
        for spec in info.fields:
            if spec.type == "choice":
                assert spec.default in spec.choices, spec.name
            if spec.type == "dataset":
                assert spec.dataset_kind is not None


def test_job_model_reference_reads_the_earlier_job_output(services: Services,
                                                          tiny_model_path: Path):
    from db.job_models import Job

    data_dir = services.settings.data_dir
    job_dir = data_dir / "elsewhere" / "job-a"
    job_dir.mkdir(parents=True)
    with services.db.write() as s:
        done = Job(kind="sft", config={}, status="succeeded", created_by="t",
                   artifact_dir=str(job_dir))
        running = Job(kind="sft", config={}, status="running", created_by="t")
        s.add(done)
        s.add(running)
        s.flush()
        done_id, running_id = done.id, running.id
    with pytest.raises(ValidationError, match="no result"):
        models.resolve(f"job:{done_id}", db=services.db, data_dir=data_dir)
    (job_dir / "result.json").write_text(json.dumps(
        {"outputs": {"model_dir": str(tiny_model_path)}, "summary": {}}))
    ref = models.resolve(f"job:{done_id}", db=services.db, data_dir=data_dir)
    assert ref.kind == "job" and ref.location == str(tiny_model_path) and ref.job_id == done_id
    with pytest.raises(ValidationError, match="is running, not succeeded"):
        models.resolve(f"job:{running_id}", db=services.db, data_dir=data_dir)
    with pytest.raises(ValidationError, match="no job 999"):
        models.resolve("job:999", db=services.db, data_dir=data_dir)
    assert models.resolve("tiny", db=services.db, data_dir=data_dir).kind == "tiny"
    with pytest.raises(ValidationError, match="not in the local Hub cache"):
        models.resolve("nobody/no-such-model", db=services.db, data_dir=data_dir)


def test_entry_refuses_a_bad_job_before_starting(make_job: MakeJob, tmp_path: Path):
    job_dir = make_job("sft", {"model": "tiny", "max_steps": 0})
    assert run_job(job_dir) == 2
    assert not (job_dir / "manifest.json").exists()
    assert run_job(tmp_path / "missing") == 2


def test_a_failing_stage_exits_nonzero_and_marks_the_manifest(services: Services,
                                                              make_job: MakeJob, tmp_path: Path,
                                                              capsys: pytest.CaptureFixture[str]):
    from sqlalchemy import text

    stored = services.prompt_sets.import_bytes("p.txt", b"one prompt\n", actor=AS_TESTER)
    with services.db.write() as s:  # emptied behind the service's back: fails at run time
        s.execute(text("DELETE FROM prompt_set_item WHERE prompt_set_id = :i"),
                  {"i": stored.id})
    job_dir = make_job("sl_cai_data", {"model": "tiny", "prompt_set": str(stored.id)})
    assert run_job(job_dir) == 1
    assert "holds no prompts" in capsys.readouterr().err.strip().splitlines()[-1]
    m = manifest(job_dir)
    assert m["status"] == "failed" and "holds no prompts" in m["error"]
    assert not (job_dir / "result.json").exists()


def test_trainable_layers_is_refused_with_lora(services: Services) -> None:
    problems = _problems(services, "reward", {"model": "tiny", "label_source": "human",
                                              "pair_dataset_id": 1, "trainable_layers": 4,
                                              "lora": True})
    assert any(p.startswith("trainable_layers: LoRA already freezes") for p in problems)
