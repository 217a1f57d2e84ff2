"""Issue 12 point 5 and 12: PPO samples exactly the scored distribution, logs an unbiased KL,
its β controller settles KL near the target, and rollouts go to the critique log."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from backend.services.container import Services
from backend.training.context import StageContext
from backend.training.ppo import KLController, kl_estimates, sample, sampling_config
from backend.training.rl_common import LoggedScorer, RolloutLog
from db import critique_log_repo


def test_rollouts_are_sampled_from_the_full_distribution_that_is_scored(
        tiny_model_path: Path) -> None:
    """transformers' default top-k of 50 (and a model's own generation config) cut the tail
    the update scores; the mass outside the top 50 must be sampled as often as it is scored."""
    import torch

    from backend.training import models
    from backend.training.ppo import _token_logp

    torch.manual_seed(0)
    tok = models.load_tokenizer(str(tiny_model_path))
    model = models.load_causal_lm(str(tiny_model_path)).eval()
    model.generation_config.top_k = 5  # a model's own settings must not apply either
    temperature, n = 1.3, 3000
    enc = tok(["Hello there"] * n, return_tensors="pt")
    with torch.no_grad():
        ids = sample(model, enc, sampling_config(tok, temperature, 1))
        logits = model(input_ids=enc["input_ids"][:1]).logits
        full = torch.cat([enc["input_ids"][:1], ids[:1, -1:]], dim=1)
        scored_one = _token_logp(model(input_ids=full).logits, full, enc["input_ids"].shape[1],
                                 temperature)
    probs = torch.softmax(logits[0, -1].float() / temperature, dim=-1)
    assert math.isclose(float(scored_one.exp()), float(probs[ids[0, -1]]), rel_tol=1e-4)
    top50 = set(torch.topk(probs, 50).indices.tolist())
    tail_mass = 1.0 - float(probs[list(top50)].sum())
    assert tail_mass > 0.2  # the demo model's distribution is wide
    sampled = ids[:, -1].tolist()
    tail_share = sum(t not in top50 for t in sampled) / n
    se = math.sqrt(tail_mass * (1 - tail_mass) / n)
    assert abs(tail_share - tail_mass) < 5 * se


def test_kl_estimates_are_unbiased() -> None:
    import torch

    torch.manual_seed(1)
    p = torch.softmax(torch.randn(20) * 2, dim=0)
    q = torch.softmax(torch.randn(20), dim=0)
    exact = float((p * (p.log() - q.log())).sum())
    tokens = torch.multinomial(p, 4 * 50_000, replacement=True).view(50_000, 4)
    logp, logq = p.log()[tokens], q.log()[tokens]
    k1, k3 = kl_estimates(logp, logq, torch.ones_like(logp))
    assert k1 == pytest.approx(4 * exact, rel=0.03) and k3 == pytest.approx(4 * exact, rel=0.03)


def _toy_run(controller: KLController, steps: int, batch: int = 16) -> list[float]:
    """A 10-token policy trained on reward r − β·KL(π ‖ uniform); KL is measured from
    ``batch`` sampled tokens per step and fed to the controller."""
    rng = np.random.default_rng(0)
    reward = np.linspace(0.0, 1.0, 10)
    theta = np.zeros(10)
    kls = []
    for _ in range(steps):
        pi = np.exp(theta - theta.max())
        pi /= pi.sum()
        log_ratio = np.log(pi) - np.log(0.1)
        drawn = rng.choice(10, size=batch, p=pi)
        kl = float(log_ratio[drawn].mean())  # k1 over tokens sampled from π
        kls.append(float((pi * log_ratio).sum()))
        objective = reward - controller.value * (log_ratio + 1.0)
        theta += 2.0 * pi * (objective - (pi * objective).sum())  # exact policy gradient
        controller.update(kl, batch)
    return kls


def test_adaptive_beta_settles_kl_near_its_target() -> None:
    """β starts 30× too small (KL ≈ 1.6 nats against a 0.3 target). Ziegler's controller with
    the horizon in rollouts brings KL within ±50 % of the target; the old horizon of 10,000
    moved β by 0.03 % per step and left KL far above it."""
    target = 0.3
    kls = _toy_run(KLController(0.01, target=target), steps=800)
    tail = kls[-200:]
    assert all(0.5 * target <= k <= 1.5 * target for k in tail), (min(tail), max(tail))
    old = _toy_run(KLController(0.01, target=target, horizon=10_000), steps=800)
    assert np.mean(old[-200:]) > 2 * target


def test_rollouts_and_rewards_go_to_the_critique_log(services: Services, tmp_path: Path) -> None:
    ctx = StageContext(job_dir=tmp_path, job_id=None, kind="rl",
                       config={"algorithm": "grpo", "temperature": 1.0, "log_rollouts": 2,
                               "max_completion_length": 8,
                               "reward_models": [{"model": "job:1", "weight": 1.0},
                                                 {"model": "job:2", "weight": 0.5}]},
                       db=services.db, data_dir=tmp_path, seed=3)
    log = RolloutLog(ctx, "job:7")

    class Fake:
        def __init__(self, name: str, value: float) -> None:
            self.__name__, self.value = name, value

        def score(self, prompts: list[str], completions: list[str]) -> list[float]:
            return [self.value + i for i in range(len(prompts))]

    scorers = [LoggedScorer(Fake("rm0", 1.0), 0, 2, 1.0, log),  # type: ignore[arg-type]
               LoggedScorer(Fake("rm1", 4.0), 1, 2, 0.5, log)]  # type: ignore[arg-type]
    prompts = [[{"role": "user", "content": f"p{i}"}] for i in range(5)]
    completions = [[{"role": "assistant", "content": f"c{i}"}] for i in range(5)]
    for s in scorers:
        s(prompts, completions)
    with services.db.read() as s:
        rows = [r for r in critique_log_repo.iter_records(s) if r.kind == "rollout"]
    assert [r.output for r in rows] == ["c0", "c1"]  # sampled: log_rollouts per batch
    assert [r.probabilities["reward"] for r in rows] == [1.0 + 0.5 * 4.0, 2.0 + 0.5 * 5.0]
    assert rows[0].params["stage"] == "rl" and rows[0].params["algorithm"] == "grpo"
    assert rows[0].params["reward_models"][1] == {"model": "job:2", "weight": 0.5}
    assert rows[0].model == "job:7" and rows[0].prompt_sent == "p0"
