"""Stage ``dpo``: TRL DPOTrainer on the AI preference pairs (offline alternative to RL).

A pair's chosen side is the one the labeller preferred (p_a > 0.5: A); pairs with
|p_a − 0.5| below ``min_confidence`` (and exact ties) are left out. The reference model is the
starting policy (with LoRA: the base weights, adapters off)."""

from __future__ import annotations

from typing import Any

from backend.errors import ValidationError
from backend.training import models, trainer_common
from backend.training.context import StageContext, StageResult
from backend.training.inputs import AiPair, ai_pairs, note_model


def preference_rows(pairs: list[AiPair], min_confidence: float) -> list[dict[str, Any]]:
    rows = []
    for p in pairs:
        margin = abs(p.p_a - 0.5)
        if margin == 0 or margin < min_confidence or p.response_a == p.response_b:
            continue
        chosen, rejected = (p.response_a, p.response_b) if p.p_a > 0.5 else \
            (p.response_b, p.response_a)
        rows.append({"prompt": [{"role": "user", "content": p.prompt}],
                     "chosen": [{"role": "assistant", "content": chosen}],
                     "rejected": [{"role": "assistant", "content": rejected}]})
    return rows


def run(ctx: StageContext) -> StageResult:
    from datasets import Dataset
    from trl.trainer.dpo_config import DPOConfig
    from trl.trainer.dpo_trainer import DPOTrainer

    cfg = ctx.config
    rows = preference_rows(ai_pairs(ctx, int(cfg["preference_dataset_id"])),
                           float(cfg["min_confidence"]))
    if not rows:
        raise ValidationError("No pair is confident enough to train on; lower min_confidence "
                              "or label more pairs.")
    ref = models.resolve(str(cfg["model"]), db=ctx.db, data_dir=ctx.data_dir, build_tiny=True)
    note_model(ctx, "policy", ref.ref, ref.location)
    tokenizer = models.load_tokenizer(ref.location)
    model = models.load_causal_lm(ref.location, dtype=models.torch_dtype_for(cfg))
    peft = models.lora_config(cfg, "CAUSAL_LM")
    ref_model = None if peft is not None else models.load_causal_lm(
        ref.location, dtype=models.torch_dtype_for(cfg, frozen=True))
    args = DPOConfig(**trainer_common.args_kwargs(
        ctx, beta=float(cfg["beta"]), max_length=int(cfg["max_length"]),
        dataset_num_proc=None))
    trainer = DPOTrainer(model=model, ref_model=ref_model, args=args,
                         train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         peft_config=peft, callbacks=trainer_common.tracking_callbacks(ctx))
    summary = trainer_common.train(ctx, trainer)
    model_dir = trainer_common.save_final(ctx, trainer, tokenizer)
    summary["pairs"] = len(rows)
    return StageResult(outputs={"model_dir": model_dir}, summary=summary)
