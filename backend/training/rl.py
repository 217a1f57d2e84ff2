"""Stage ``rl``: from the SL-CAI model, maximise E[r(x, y)] − β·KL(π ‖ π_SFT).

The reward is a weighted sum of reward models (each a sequence classifier from the reward
stage), scoring the text ``Human: {prompt}\\n\\nAssistant: {completion}`` exactly as they were
trained. ``algorithm``: ``grpo`` / ``rloo`` use TRL's GRPOTrainer / RLOOTrainer (the weights
become ``reward_weights``); ``ppo`` runs the compact PPO of ``backend.training.ppo``.
"""

from __future__ import annotations

from typing import Any

from backend.training import models, trainer_common
from backend.training.context import StageContext, StageResult
from backend.training.inputs import dialogue, load_prompts, note_dataset, note_model


class RewardModelScorer:
    """A TRL reward function: scores (prompt, completion) with one reward model."""

    def __init__(self, name: str, location: str, device: Any, max_length: int) -> None:
        import torch

        self.__name__ = name
        self.tokenizer = models.load_tokenizer(location)
        self.tokenizer.truncation_side = "left"
        self.tokenizer.padding_side = "right"
        self.model = models.load_reward_model(location, self.tokenizer).to(device).eval()
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


def reward_scorers(ctx: StageContext, device: Any) -> tuple[list[RewardModelScorer], list[float]]:
    scorers, weights = [], []
    for i, item in enumerate(ctx.config["reward_models"]):
        ref = models.resolve(str(item["model"]), db=ctx.db, data_dir=ctx.data_dir)
        note_model(ctx, f"reward_{i}", ref.ref, ref.location)
        name = f"rm{i}_" + ref.ref.replace(":", "").replace("/", "_")[-40:]
        scorers.append(RewardModelScorer(name, ref.location, device,
                                         int(ctx.config["max_length"])))
        weights.append(float(item["weight"]))
    return scorers, weights


def prompt_rows(ctx: StageContext) -> list[dict[str, Any]]:
    prompt_set = load_prompts(ctx.db, str(ctx.config["prompt_set"]),
                              int(ctx.config["max_prompts"]))
    note_dataset(ctx, "prompt_set", {"source": prompt_set.source, "sha256": prompt_set.sha256,
                                     "prompts": len(prompt_set.prompts)})
    return [{"prompt": [{"role": "user", "content": p}]} for p in prompt_set.prompts]


def run(ctx: StageContext) -> StageResult:
    if ctx.config["algorithm"] == "ppo":
        from backend.training.ppo import run as run_ppo

        return run_ppo(ctx)
    from datasets import Dataset

    cfg = ctx.config
    rows = prompt_rows(ctx)
    ref = models.resolve(str(cfg["model"]), db=ctx.db, data_dir=ctx.data_dir, build_tiny=True)
    note_model(ctx, "policy", ref.ref, ref.location)
    tokenizer = models.load_tokenizer(ref.location)
    tokenizer.padding_side = "left"
    model = models.load_causal_lm(ref.location)
    device = "cpu" if trainer_common.use_cpu(ctx) else "cuda"
    scorers, weights = reward_scorers(ctx, device)
    funcs: list[Any] = list(scorers)
    common = trainer_common.args_kwargs(
        ctx, beta=float(cfg["beta"]), num_generations=int(cfg["num_generations"]),
        max_completion_length=int(cfg["max_completion_length"]),
        temperature=float(cfg["temperature"]), reward_weights=weights, log_completions=False)
    if cfg["algorithm"] == "grpo":
        from trl.trainer.grpo_config import GRPOConfig
        from trl.trainer.grpo_trainer import GRPOTrainer

        trainer: Any = GRPOTrainer(model=model, reward_funcs=funcs,
                                   args=GRPOConfig(**common),
                                   train_dataset=Dataset.from_list(rows),
                                   processing_class=tokenizer,
                                   peft_config=models.lora_config(cfg, "CAUSAL_LM"),
                                   callbacks=[trainer_common.metrics_callback(ctx)])
    else:
        from trl.trainer.rloo_config import RLOOConfig
        from trl.trainer.rloo_trainer import RLOOTrainer

        trainer = RLOOTrainer(model=model, reward_funcs=funcs, args=RLOOConfig(**common),
                              train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                              peft_config=models.lora_config(cfg, "CAUSAL_LM"),
                              callbacks=[trainer_common.metrics_callback(ctx)])
    summary = trainer_common.train(ctx, trainer)
    model_dir = trainer_common.save_final(ctx, trainer, tokenizer)
    summary["prompts"] = len(rows)
    return StageResult(outputs={"model_dir": model_dir}, summary=summary)
