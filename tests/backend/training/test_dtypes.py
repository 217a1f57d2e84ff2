"""Models load in the dtype the stage asks for (``mixed_precision``): bf16 asked → bf16
parameters, for the trained model, the reference and the reward scorers."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from backend.services.container import Services
from backend.training import models
from tests.backend.training.conftest import MakeJob, insert_sl_cai_dataset, result, run_job


@pytest.mark.parametrize(("precision", "frozen", "expected"), [
    ("no", False, "float32"), ("bf16", False, "bfloat16"), ("bf16", True, "bfloat16"),
    ("fp16", False, "float32"), ("fp16", True, "float16")])
def test_dtype_follows_mixed_precision(precision: str, frozen: bool, expected: str):
    assert models.torch_dtype_for({"mixed_precision": precision}, frozen=frozen) == expected


def test_loaders_honour_the_dtype(tiny_model_path: Path, tiny_reward_path: Path):
    import torch

    lm = models.load_causal_lm(str(tiny_model_path), dtype="bfloat16")
    assert {p.dtype for p in lm.parameters()} == {torch.bfloat16}
    tok = models.load_tokenizer(str(tiny_reward_path))
    rm = models.load_reward_model(str(tiny_reward_path), tok, dtype="bfloat16")
    assert {p.dtype for p in rm.parameters()} == {torch.bfloat16}


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Records the parameter dtypes of every model a stage loads."""
    seen: list[Any] = []
    real_lm, real_rm = models.load_causal_lm, models.load_reward_model

    def lm(location: str, **kw: Any) -> Any:
        model = real_lm(location, **kw)
        seen.append(next(model.parameters()).dtype)
        return model

    def rm(location: str, tokenizer: Any, **kw: Any) -> Any:
        model = real_rm(location, tokenizer, **kw)
        seen.append(next(model.parameters()).dtype)
        return model

    monkeypatch.setattr(models, "load_causal_lm", lm)
    monkeypatch.setattr(models, "load_reward_model", rm)
    return seen


def test_sft_in_bf16_trains_and_saves_bf16_weights(services: Services, make_job: MakeJob,
                                                   tiny_model_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch):
    import torch
    from safetensors import safe_open

    seen = _spy(monkeypatch)
    job_dir = make_job("sft", {"model": str(tiny_model_path),
                               "sl_cai_dataset_id": insert_sl_cai_dataset(services),
                               "max_steps": 1, "save_steps": 1, "batch_size": 2,
                               "max_length": 64, "device": "cpu", "mixed_precision": "bf16"})
    assert run_job(job_dir) == 0
    assert seen == [torch.bfloat16]
    out = Path(result(job_dir)["outputs"]["model_dir"]) / "model.safetensors"
    with safe_open(str(out), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys()} == {torch.bfloat16}  # noqa: SIM118


def test_ppo_in_bf16_loads_policy_reference_and_reward_in_bf16(
        services: Services, make_job: MakeJob, tiny_model_path: Path, tiny_reward_path: Path,
        monkeypatch: pytest.MonkeyPatch):
    import torch

    seen = _spy(monkeypatch)
    job_dir = make_job("rl", {"model": str(tiny_model_path), "algorithm": "ppo",
                              "reward_models": [{"model": str(tiny_reward_path), "weight": 1.0}],
                              "max_steps": 1, "save_steps": 1, "batch_size": 2,
                              "max_completion_length": 4, "max_prompts": 4, "ppo_epochs": 1,
                              "max_length": 64, "device": "cpu", "mixed_precision": "bf16"})
    assert run_job(job_dir) == 0
    assert seen == [torch.bfloat16] * 3  # policy, reference, reward model
