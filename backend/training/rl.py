"""Stage ``rl``: from the SL-CAI model, maximise E[r(x, y)] − β·KL(π ‖ π_SFT).

The reward is a weighted sum of reward models (each a sequence classifier from the reward
stage), scoring the text ``Human: {prompt}\\n\\nAssistant: {completion}`` exactly as they were
trained. ``algorithm``: ``grpo`` / ``rloo`` use TRL's GRPOTrainer / RLOOTrainer (the weights
become ``reward_weights``); ``ppo`` runs the compact PPO of ``backend.training.ppo``. What
both share (reward-model scoring, the rollout log, the prompts) is ``rl_common``.

Every rollout the policy writes and its reward score go to the critique log (kind
``rollout``) with the job's provenance; when a batch is large, its first ``log_rollouts``
rollouts are logged (the batch's prompts are drawn by the seed, so that is a seeded sample).
"""

from __future__ import annotations

from typing import Any

from backend.training import models, ppo, trainer_common
from backend.training.context import StageContext, StageResult
from backend.training.inputs import note_model
from backend.training.rl_common import LoggedScorer, RolloutLog, prompt_rows, reward_scorers


def vllm_kwargs(cfg: dict[str, Any]) -> dict[str, Any]:
    """GRPO/RLOO config fields of TRL's vLLM integration, from the stage config (nothing when
    use_vllm is off: generation stays in transformers)."""
    if not cfg.get("use_vllm"):
        return {}
    out: dict[str, Any] = {"use_vllm": True, "vllm_mode": str(cfg.get("vllm_mode") or "server")}
    if out["vllm_mode"] == "server":
        out["vllm_server_base_url"] = str(cfg["vllm_server_base_url"]).rstrip("/")
    else:
        out["vllm_gpu_memory_utilization"] = float(cfg.get("vllm_gpu_memory_utilization")
                                                   or 0.3)
    return out


def run(ctx: StageContext) -> StageResult:
    if ctx.config["algorithm"] == "ppo":
        return ppo.run(ctx)
    from datasets import Dataset

    cfg = ctx.config
    rows = prompt_rows(ctx)
    ref = models.resolve(str(cfg["model"]), db=ctx.db, data_dir=ctx.data_dir, build_tiny=True)
    note_model(ctx, "policy", ref.ref, ref.location)
    tokenizer = models.load_tokenizer(ref.location)
    tokenizer.padding_side = "left"
    model = models.load_causal_lm(ref.location, dtype=models.torch_dtype_for(cfg))
    device = trainer_common.rank_device(ctx)  # each rank scores on its own GPU
    scorers, weights = reward_scorers(ctx, device)
    rollout_log = RolloutLog(ctx, ref.ref)
    funcs: list[Any] = [LoggedScorer(sc, i, len(scorers), w, rollout_log)
                        for i, (sc, w) in enumerate(zip(scorers, weights, strict=True))]
    common = trainer_common.args_kwargs(
        ctx, beta=float(cfg["beta"]), num_generations=int(cfg["num_generations"]),
        max_completion_length=int(cfg["max_completion_length"]),
        temperature=float(cfg["temperature"]), reward_weights=weights, log_completions=False,
        **vllm_kwargs(cfg))
    if cfg["algorithm"] == "grpo":
        from trl.trainer.grpo_config import GRPOConfig
        from trl.trainer.grpo_trainer import GRPOTrainer

        trainer: Any = GRPOTrainer(model=model, reward_funcs=funcs,
                                   args=GRPOConfig(**common),
                                   train_dataset=Dataset.from_list(rows),
                                   processing_class=tokenizer,
                                   peft_config=models.lora_config(cfg, "CAUSAL_LM"),
                                   callbacks=trainer_common.tracking_callbacks(ctx))
    else:
        from trl.trainer.rloo_config import RLOOConfig
        from trl.trainer.rloo_trainer import RLOOTrainer

        trainer = RLOOTrainer(model=model, reward_funcs=funcs, args=RLOOConfig(**common),
                              train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                              peft_config=models.lora_config(cfg, "CAUSAL_LM"),
                              callbacks=trainer_common.tracking_callbacks(ctx))
    summary = trainer_common.train(ctx, trainer)
    model_dir = trainer_common.save_final(ctx, trainer, tokenizer)
    summary["prompts"] = len(rows)
    return StageResult(outputs={"model_dir": model_dir}, summary=summary)
