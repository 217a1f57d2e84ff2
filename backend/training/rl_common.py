"""What the RL algorithms share (TRL GRPO / RLOO in ``rl``, the compact PPO in ``ppo``): the
reward-model scorers, the rollout log to the critique log, and the prompts. Neither algorithm
module imports the other's internals, so ``rl`` → ``ppo`` → ``rl_common`` has no circle."""

from __future__ import annotations

from typing import Any

from backend.cai.steplog import StepRecord, new_chain_id
from backend.common.critique_log import DbStepLogger
from backend.engines.base import EngineInfo
from backend.training import models
from backend.training.context import StageContext
from backend.training.inputs import dialogue, load_prompts, note_dataset, note_model


class RewardModelScorer:
    """A TRL reward function: scores (prompt, completion) with one reward model."""

    def __init__(self, name: str, location: str, device: Any, max_length: int,
                 dtype: str = "float32") -> None:
        import torch

        self.__name__ = name
        self.tokenizer = models.load_tokenizer(location)
        self.tokenizer.truncation_side = "left"
        self.tokenizer.padding_side = "right"
        self.model = models.load_reward_model(location, self.tokenizer,
                                             dtype=dtype).to(device).eval()
        self.device = device
        self.max_length = max_length
        self._torch = torch

    def score(self, prompts: list[str], completions: list[str]) -> list[float]:
        tok = self.tokenizer
        eos = tok.eos_token if tok.cls_token is None and tok.eos_token else ""
        texts = [dialogue(p, c) + eos for p, c in zip(prompts, completions, strict=True)]
        enc = tok(texts, truncation=True, max_length=self.max_length, padding=True,
                  return_tensors="pt").to(self.device)
        with self._torch.no_grad():
            logits = self.model(input_ids=enc["input_ids"],
                                attention_mask=enc["attention_mask"]).logits
        return [float(x) for x in logits.squeeze(-1).float().tolist()]

    def __call__(self, prompts: list[Any], completions: list[Any], **_: Any) -> list[float]:
        return self.score([_text(p) for p in prompts], [_text(c) for c in completions])


def _text(value: Any) -> str:
    """Plain text of a TRL prompt/completion (a string or a list of chat messages)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "\n".join(str(m.get("content", "")) for m in value if isinstance(m, dict))
    return str(value)


class RolloutLog:
    """Rollouts and their (weighted) reward scores to the critique log, at most ``log_rollouts``
    per batch, each with the job id, stage, algorithm, step and sampling settings."""

    def __init__(self, ctx: StageContext, policy_ref: str) -> None:
        cfg = ctx.config
        self._writer = DbStepLogger(ctx.db, ctx.actor)
        self._limit = int(cfg.get("log_rollouts", 8))
        self._seed = ctx.seed
        self._engine = EngineInfo("local", policy_ref[:300])
        self._params: dict[str, object] = {
            "stage": ctx.kind, "algorithm": cfg.get("algorithm"), "job_id": ctx.job_id,
            "temperature": cfg.get("temperature"),
            "max_completion_length": cfg.get("max_completion_length"),
            "reward_models": [{"model": str(m["model"]), "weight": float(m["weight"])}
                              for m in cfg.get("reward_models", [])]}
        self._pending: list[float] = []
        self.batches = 0

    def log(self, step: int, prompts: list[str], completions: list[str],
            rewards: list[float]) -> list[int]:
        n = min(self._limit, len(prompts))
        if n <= 0:
            return []
        return self._writer.log([StepRecord(
            kind="rollout", chain_id=new_chain_id(), prompt_sent=prompts[i],
            output=completions[i], engine=self._engine,
            params={**self._params, "step": step, "index": i, "batch": len(prompts)},
            constitution_version_id=None, seed=self._seed,
            probabilities={"reward": rewards[i]}) for i in range(n)])

    def scored(self, which: int, of: int, weight: float, prompts: list[str],
               completions: list[str], scores: list[float]) -> None:
        """One reward model's scores of a batch (TRL calls them in order); the batch is
        logged with the weighted sum once the last one has scored it."""
        if which == 0:
            self._pending = [0.0] * len(scores)
        self._pending = [t + weight * x for t, x in zip(self._pending, scores, strict=True)]
        if which == of - 1:
            self.batches += 1
            self.log(self.batches, prompts, completions, self._pending)


class LoggedScorer:
    """A TRL reward function that scores with a reward model and reports to a RolloutLog."""

    def __init__(self, scorer: RewardModelScorer, which: int, of: int, weight: float,
                 log: RolloutLog) -> None:
        self.__name__ = scorer.__name__
        self._scorer, self._which, self._of, self._weight, self._log = (
            scorer, which, of, weight, log)

    def __call__(self, prompts: list[Any], completions: list[Any], **kw: Any) -> list[float]:
        texts, outs = [_text(p) for p in prompts], [_text(c) for c in completions]
        scores = self._scorer.score(texts, outs)
        self._log.scored(self._which, self._of, self._weight, texts, outs, scores)
        return scores


def reward_scorers(ctx: StageContext, device: Any) -> tuple[list[RewardModelScorer], list[float]]:
    scorers, weights = [], []
    for i, item in enumerate(ctx.config["reward_models"]):
        ref = models.resolve(str(item["model"]), db=ctx.db, data_dir=ctx.data_dir)
        note_model(ctx, f"reward_{i}", ref.ref, ref.location)
        name = f"rm{i}_" + ref.ref.replace(":", "").replace("/", "_")[-40:]
        scorers.append(RewardModelScorer(name, ref.location, device,
                                         int(ctx.config["max_length"]),
                                         models.torch_dtype_for(ctx.config, frozen=True)))
        weights.append(float(item["weight"]))
    return scorers, weights


def prompt_rows(ctx: StageContext) -> list[dict[str, Any]]:
    prompt_set = load_prompts(ctx.db, str(ctx.config["prompt_set"]),
                              int(ctx.config["max_prompts"]))
    note_dataset(ctx, "prompt_set", {"source": prompt_set.source, "sha256": prompt_set.sha256,
                                     "prompts": len(prompt_set.prompts)})
    return [{"prompt": [{"role": "user", "content": p}]} for p in prompt_set.prompts]
