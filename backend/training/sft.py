"""Stage ``sft``: TRL SFTTrainer on (prompt, final revision) of an SL-CAI dataset, optionally
mixed with helpfulness data (the preferred responses of a human pair dataset). The loss is on
the completion only; checkpoints every ``save_steps``; a restart resumes from the last one."""

from __future__ import annotations

import random
from typing import Any

from backend.errors import ValidationError
from backend.training import models, trainer_common
from backend.training.context import StageContext, StageResult
from backend.training.inputs import HumanPair, human_pairs, note_model, sl_cai_samples


def _row(prompt: str, completion: str, source: str) -> dict[str, Any]:
    return {"prompt": [{"role": "user", "content": prompt}],
            "completion": [{"role": "assistant", "content": completion}], "source": source}


def helpful_rows(pairs: list[HumanPair], n: int, seed: int) -> list[dict[str, Any]]:
    """Up to ``n`` (prompt, preferred response) rows; ties carry no preference and are left out."""
    usable = [(p.prompt, p.response_a if p.label == 1.0 else p.response_b)
              for p in pairs if p.label in (0.0, 1.0)]
    random.Random(seed).shuffle(usable)
    return [_row(prompt, response, "helpful") for prompt, response in usable[:n]]


def training_rows(ctx: StageContext) -> list[dict[str, Any]]:
    cfg = ctx.config
    rows = [_row(p, r, "sl_cai") for p, r in sl_cai_samples(ctx, int(cfg["sl_cai_dataset_id"]))
            if r.strip()]
    if cfg.get("helpful_samples") and cfg.get("helpful_dataset_id"):
        pairs = human_pairs(ctx, int(cfg["helpful_dataset_id"]), "helpful")
        rows += helpful_rows(pairs, int(cfg["helpful_samples"]), ctx.seed)
    if not rows:
        raise ValidationError("The SL-CAI dataset has no non-empty revisions to train on.")
    return rows


def run(ctx: StageContext) -> StageResult:
    from datasets import Dataset
    from trl.trainer.sft_config import SFTConfig
    from trl.trainer.sft_trainer import SFTTrainer

    cfg = ctx.config
    rows = training_rows(ctx)
    ref = models.resolve(str(cfg["model"]), db=ctx.db, data_dir=ctx.data_dir, build_tiny=True)
    note_model(ctx, "base", ref.ref, ref.location)
    tokenizer = models.load_tokenizer(ref.location)
    model = models.load_causal_lm(ref.location, dtype=models.torch_dtype_for(cfg))
    args = SFTConfig(**trainer_common.args_kwargs(
        ctx, max_length=int(cfg["max_length"]), completion_only_loss=True,
        dataset_num_proc=None, remove_unused_columns=True))
    trainer = SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows),
                         processing_class=tokenizer,
                         peft_config=models.lora_config(cfg, "CAUSAL_LM"),
                         callbacks=trainer_common.tracking_callbacks(ctx))
    summary = trainer_common.train(ctx, trainer)
    model_dir = trainer_common.save_final(ctx, trainer, tokenizer)
    summary["examples"] = len(rows)
    summary["helpful_examples"] = sum(r["source"] == "helpful" for r in rows)
    return StageResult(outputs={"model_dir": model_dir}, summary=summary)
