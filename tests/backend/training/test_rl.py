from __future__ import annotations

from pathlib import Path

import pytest

from backend.services.container import Services
from tests.backend.training.conftest import (
    MakeJob,
    assert_manifest_complete,
    metrics_lines,
    result,
    run_job,
    state_dict_changed,
)


def _prompts(tmp_path: Path) -> Path:
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(f'{{"prompt": "Tell me a story about {w}."}}'
                              for w in ("cats", "dogs", "boats", "trees")), encoding="utf-8")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("algorithm", ["grpo", "rloo"])
def test_trl_rl_trains_against_weighted_reward_models(
        services: Services, make_job: MakeJob, tiny_model_path: Path, tiny_reward_path: Path,
        tmp_path: Path, algorithm: str):
    from transformers import AutoModelForCausalLM

    job_dir = make_job("rl", {
        "model": str(tiny_model_path), "algorithm": algorithm,
        "reward_models": f"{tiny_reward_path}=1.0, {tiny_reward_path}=0.5",
        "prompt_set": str(_prompts(tmp_path)), "num_generations": 2, "batch_size": 4,
        "max_completion_length": 6, "max_steps": 2, "save_steps": 2, "learning_rate": 1e-3,
        "beta": 0.1, "max_length": 64, "device": "cpu"})
    assert run_job(job_dir) == 0
    model_dir = Path(result(job_dir)["outputs"]["model_dir"])
    assert state_dict_changed(tiny_model_path, model_dir)
    AutoModelForCausalLM.from_pretrained(str(job_dir / "checkpoints" / "checkpoint-2"))
    lines = metrics_lines(job_dir)
    assert any("reward" in x for x in lines) and any("kl" in x for x in lines)
    m = assert_manifest_complete(job_dir, datasets=("prompt_set",))
    assert {"policy", "reward_0", "reward_1"} <= set(m["models"])
    # issue 12: the rollouts and their weighted rewards are in the critique log
    from db import critique_log_repo

    with services.db.read() as s:
        rollouts = [r for r in critique_log_repo.iter_records(s) if r.kind == "rollout"]
    assert rollouts and all(r.params["algorithm"] == algorithm and r.params["stage"] == "rl"
                            for r in rollouts)
    assert all(isinstance((r.probabilities or {}).get("reward"), float) for r in rollouts)
