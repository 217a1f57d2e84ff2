"""Stage ``reward``: TRL RewardTrainer with the soft-label Bradley–Terry loss.

Each example is a pair (A, B) with p = P(A is better): an AI soft label (preference-data
stage), a human label (1, 0 or ½ for a tie) or both mixed. With Δ = r(A) − r(B) the loss is
``-(p·logσ(Δ) + (1−p)·logσ(−Δ))``; p ∈ {0, 1} gives TRL's usual loss. Held-out human pairs
measure accuracy (ties count ½) with a Wilson 95 % interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from backend.cai import metrics as agreement
from backend.errors import ValidationError
from backend.training import models, trainer_common
from backend.training.context import StageContext, StageResult
from backend.training.inputs import ai_pairs, dialogue, human_pairs, note_model, split_held_out


@dataclass(frozen=True)
class Pair:
    prompt: str
    response_a: str
    response_b: str
    p_a: float


def soft_bt_loss(delta: Any, p: Any) -> Any:
    """-(p·logσ(Δ) + (1−p)·logσ(−Δ)), averaged over the batch (torch tensors)."""
    import torch.nn.functional as F

    return -(p * F.logsigmoid(delta) + (1.0 - p) * F.logsigmoid(-delta)).mean()


def wilson_interval(successes: float, n: int, z: float = 1.959964) -> tuple[float, float]:
    if n == 0:
        return (0.0, 1.0)
    phat = successes / n
    denom = 1 + z * z / n
    centre = (phat + z * z / (2 * n)) / denom
    half = z * math.sqrt(phat * (1 - phat) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, min(phat, centre - half)), min(1.0, max(phat, centre + half)))


def trainer_classes() -> tuple[type, type]:
    """(SoftLabelRewardTrainer, SoftLabelCollator), built on TRL's classes at call time."""
    import torch
    from trl.trainer.reward_trainer import DataCollatorForPreference, RewardTrainer

    class SoftLabelCollator(DataCollatorForPreference):
        def torch_call(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
            out: dict[str, Any] = super().torch_call(examples)
            out["soft_label"] = torch.tensor([float(e["soft_label"]) for e in examples])
            return out

    class SoftLabelRewardTrainer(RewardTrainer):
        """RewardTrainer whose loss takes the soft label p of each pair."""

        def _set_signature_columns_if_needed(self) -> None:
            if self._signature_columns is None:
                self._signature_columns = [  # type: ignore[assignment]
                    "chosen_ids", "rejected_ids", "soft_label"]

        def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                         num_items_in_batch: Any = None) -> Any:
            mode = "train" if model.training else "eval"
            p = inputs["soft_label"].to(torch.float32)
            outputs = model(input_ids=inputs["input_ids"],
                            attention_mask=inputs["attention_mask"])
            r_a, r_b = torch.chunk(outputs.logits.squeeze(-1).to(torch.float32), chunks=2)
            delta = r_a - r_b
            loss = soft_bt_loss(delta, p)
            with torch.no_grad():
                decision = (delta > 0).float() + 0.5 * (delta == 0).float()
                accuracy = (1.0 - (decision - p).abs()).mean()
                self._metrics[mode]["accuracy"].append(
                    self.accelerator.gather_for_metrics(accuracy).mean().item())
                self._metrics[mode]["margin"].append(
                    self.accelerator.gather_for_metrics(delta.mean()).mean().item())
                self._metrics[mode]["mean_reward"].append(outputs.logits.mean().item())
            return (loss, outputs) if return_outputs else loss

    return SoftLabelRewardTrainer, SoftLabelCollator


def tokenized(pairs: list[Pair], tokenizer: Any, max_length: int) -> list[dict[str, Any]]:
    """Token ids of each side (the end is kept when a text is too long: it holds the reply)."""
    tokenizer.truncation_side = "left"
    eos = tokenizer.eos_token if tokenizer.cls_token is None and tokenizer.eos_token else ""

    def ids(texts: list[str]) -> list[list[int]]:
        enc = tokenizer([t + eos for t in texts], truncation=True, max_length=max_length,
                        add_special_tokens=True)
        return [list(x) for x in enc["input_ids"]]

    if not pairs:  # eval_pairs = 0: nothing held out (the tokenizer refuses an empty batch)
        return []
    a = ids([dialogue(p.prompt, p.response_a) for p in pairs])
    b = ids([dialogue(p.prompt, p.response_b) for p in pairs])
    return [{"chosen_ids": x, "rejected_ids": y, "soft_label": p.p_a}
            for x, y, p in zip(a, b, pairs, strict=True)]


def pair_rewards(model: Any, rows: list[dict[str, Any]], pad_id: int, batch: int = 32
                 ) -> list[float]:
    """Δ = r(A) − r(B) for each tokenized pair (no gradients)."""
    import torch
    from trl.trainer.reward_trainer import DataCollatorForPreference

    collate = DataCollatorForPreference(pad_token_id=pad_id)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    deltas: list[float] = []
    with torch.no_grad():
        for start in range(0, len(rows), batch):
            chunk = [{"chosen_ids": r["chosen_ids"], "rejected_ids": r["rejected_ids"]}
                     for r in rows[start:start + batch]]
            inputs = collate(chunk)
            logits = model(input_ids=inputs["input_ids"].to(device),
                           attention_mask=inputs["attention_mask"].to(device)).logits
            r_a, r_b = torch.chunk(logits.squeeze(-1).float(), chunks=2)
            deltas.extend((r_a - r_b).tolist())
    model.train(was_training)
    return deltas


def held_out_accuracy(model: Any, rows: list[dict[str, Any]], pad_id: int) -> dict[str, float]:
    deltas = pair_rewards(model, rows, pad_id)
    labels = [float(r["soft_label"]) for r in rows]
    p_model = [1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, d)))) for d in deltas]
    acc = agreement.accuracy(p_model, labels)
    low, high = wilson_interval(acc * len(rows), len(rows))
    return {"eval_accuracy": acc, "eval_accuracy_low": low, "eval_accuracy_high": high,
            "eval_pairs": float(len(rows))}


def training_pairs(ctx: StageContext) -> tuple[list[Pair], list[Pair]]:
    """(train, held-out human pairs) for the configured label source."""
    cfg = ctx.config
    train: list[Pair] = []
    held: list[Pair] = []
    if cfg.get("pair_dataset_id"):
        humans = human_pairs(ctx, int(cfg["pair_dataset_id"]), "human")
        rest, held_h = split_held_out(humans, int(cfg["eval_pairs"]), ctx.seed)
        held = [Pair(h.prompt, h.response_a, h.response_b, h.label) for h in held_h]
        if cfg["label_source"] in ("human", "mix"):
            cap = int(cfg.get("max_train_pairs") or 0) or len(rest)
            train += [Pair(h.prompt, h.response_a, h.response_b, h.label) for h in rest[:cap]]
    if cfg["label_source"] in ("ai", "mix"):
        train += [Pair(a.prompt, a.response_a, a.response_b, a.p_a)
                  for a in ai_pairs(ctx, int(cfg["preference_dataset_id"]))]
    if not train:
        raise ValidationError("No training pairs: the chosen datasets are empty.")
    return train, held


def run(ctx: StageContext) -> StageResult:
    from datasets import Dataset
    from trl.trainer.reward_config import RewardConfig

    cfg = ctx.config
    train, held = training_pairs(ctx)
    ref = models.resolve(str(cfg["model"]), db=ctx.db, data_dir=ctx.data_dir, build_tiny=True)
    note_model(ctx, "backbone", ref.ref, ref.location)
    tokenizer = models.load_tokenizer(ref.location)
    model = models.load_reward_model(ref.location, tokenizer,
                                     dtype=models.torch_dtype_for(cfg),
                                     pooling=str(cfg.get("reward_pooling") or "auto"))
    models.train_top_layers(model, int(cfg.get("trainable_layers") or 0))
    max_length = int(cfg["max_length"])
    train_rows = tokenized(train, tokenizer, max_length)
    eval_rows = tokenized(held, tokenizer, max_length)
    eval_steps = int(cfg.get("eval_steps") or 0)
    extra: dict[str, Any] = {"max_length": max_length, "dataset_num_proc": None,
                             "remove_unused_columns": False, "disable_dropout": True}
    if eval_steps and eval_rows:
        extra.update(eval_strategy="steps", eval_steps=eval_steps)
    trainer_cls, collator_cls = trainer_classes()
    trainer = trainer_cls(
        model=model, args=RewardConfig(**trainer_common.args_kwargs(ctx, **extra)),
        data_collator=collator_cls(pad_token_id=tokenizer.pad_token_id),
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows and eval_steps else None,
        processing_class=tokenizer, peft_config=models.lora_config(cfg, "SEQ_CLS"),
        callbacks=trainer_common.tracking_callbacks(ctx))
    summary = trainer_common.train(ctx, trainer)
    if eval_rows:
        scores = held_out_accuracy(trainer.model, eval_rows, tokenizer.pad_token_id)
        summary.update(scores)
        ctx.metrics.write(int(trainer.state.global_step), **scores, progress=1.0)
    model_dir = trainer_common.save_final(ctx, trainer, tokenizer)
    summary["train_pairs"] = len(train_rows)
    return StageResult(outputs={"model_dir": model_dir}, summary=summary)
