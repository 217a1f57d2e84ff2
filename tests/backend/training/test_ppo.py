from __future__ import annotations

import json
from pathlib import Path

import pytest

from backend.services.container import Services
from backend.training.ppo import KLController, clipped_losses, completion_mask, gae
from tests.backend.training.conftest import (
    MakeJob,
    assert_manifest_complete,
    metrics_lines,
    result,
    run_job,
    state_dict_changed,
)


def test_gae_matches_the_recursion_and_ignores_masked_tokens():
    import torch

    rewards = torch.tensor([[0.0, 0.0, 1.0, 5.0]])
    values = torch.tensor([[0.5, 0.2, 0.1, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])  # the last token is after EOS
    gamma, lam = 0.9, 0.8
    d2 = 1.0 - 0.1
    d1 = 0.0 + gamma * 0.1 - 0.2
    d0 = 0.0 + gamma * 0.2 - 0.5
    a2 = d2
    a1 = d1 + gamma * lam * a2
    a0 = d0 + gamma * lam * a1
    adv, ret = gae(rewards, values, mask, gamma, lam)
    assert adv[0].tolist() == pytest.approx([a0, a1, a2, 0.0])
    assert ret[0, :3].tolist() == pytest.approx([a0 + 0.5, a1 + 0.2, a2 + 0.1])


def test_clipped_policy_loss_stops_pushing_past_the_clip_range():
    import torch

    mask = torch.ones(1, 1)
    adv = torch.ones(1, 1)
    old = torch.zeros(1, 1)
    far = torch.full((1, 1), 0.5, requires_grad=True)  # ratio e^0.5 > 1.2
    pg, _, clipfrac = clipped_losses(far, old, adv, old, old, old, mask, 0.2, 0.2)
    pg.backward()
    assert far.grad is not None and far.grad.item() == 0.0 and clipfrac.item() == 1.0
    near = torch.full((1, 1), 0.05, requires_grad=True)
    pg, _, _ = clipped_losses(near, old, adv, old, old, old, mask, 0.2, 0.2)
    pg.backward()
    assert near.grad is not None and near.grad.item() < 0  # still raises the likelihood


def test_adaptive_kl_controller_moves_beta_towards_the_target():
    high = KLController(0.1, target=1.0, horizon=100)
    high.update(current_kl=5.0, n_steps=10)
    assert high.value > 0.1
    low = KLController(0.1, target=1.0, horizon=100)
    low.update(current_kl=0.1, n_steps=10)
    assert low.value < 0.1
    fixed = KLController(0.1)
    fixed.update(current_kl=5.0, n_steps=10)
    assert fixed.value == 0.1


def test_completion_mask_keeps_tokens_up_to_the_first_eos():
    import torch

    mask = completion_mask(torch.tensor([[5, 2, 9, 9], [5, 6, 7, 8]]), eos_id=2, pad_id=0)
    assert mask.tolist() == [[1, 1, 0, 0], [1, 1, 1, 1]]


@pytest.mark.slow
def test_ppo_trains_checkpoints_and_resumes(services: Services, make_job: MakeJob,
                                            tiny_model_path: Path, tiny_reward_path: Path,
                                            tmp_path: Path):
    from transformers import AutoModelForCausalLM

    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "Say something kind."}\n{"prompt": "Name a colour."}\n',
                       encoding="utf-8")
    config = {"model": str(tiny_model_path), "algorithm": "ppo",
              "reward_models": [{"model": str(tiny_reward_path), "weight": 1.0}],
              "prompt_set": str(prompts), "batch_size": 2, "max_completion_length": 6,
              "max_steps": 2, "save_steps": 1, "learning_rate": 1e-3, "beta": 0.1,
              "kl_target": 0.5, "ppo_epochs": 2, "max_length": 64, "device": "cpu"}
    job_dir = make_job("rl", config)
    assert run_job(job_dir) == 0
    assert (job_dir / "checkpoints" / "checkpoint-2" / "ppo_state.json").is_file()
    job = json.loads((job_dir / "job.json").read_text())
    job["config"]["max_steps"] = 3
    (job_dir / "job.json").write_text(json.dumps(job))
    assert run_job(job_dir) == 0
    steps = [x["step"] for x in metrics_lines(job_dir)]
    assert steps == [1, 2, 3]  # the second run continued from checkpoint-2
    lines = metrics_lines(job_dir)
    assert all({"loss", "reward", "kl", "beta", "value_loss"} <= set(x) for x in lines)
    out = result(job_dir)
    assert out["summary"]["global_step"] == 3
    model_dir = Path(out["outputs"]["model_dir"])
    assert (model_dir / "value_head.pt").is_file()
    assert state_dict_changed(tiny_model_path, model_dir)
    AutoModelForCausalLM.from_pretrained(str(job_dir / "checkpoints" / "checkpoint-3"))
    assert assert_manifest_complete(job_dir)["resumed_from"] == "checkpoint-2"
    assert all("kl_k3" in x for x in lines)
    # every rollout (batch 2 ≤ log_rollouts) and its reward is in the critique log
    from db import critique_log_repo

    with services.db.read() as s:
        rollouts = [r for r in critique_log_repo.iter_records(s) if r.kind == "rollout"]
    assert len(rollouts) == 3 * 2
    assert {r.params["step"] for r in rollouts} == {1, 2, 3}
    assert all(r.params["algorithm"] == "ppo" and "reward" in (r.probabilities or {})
               for r in rollouts)
