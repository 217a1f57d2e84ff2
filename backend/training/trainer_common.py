"""What the HF-Trainer-based stages share: TrainingArguments fields from the stage config,
resume from the latest checkpoint, saving the final model, the metrics callback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from backend.training.callbacks import make_metrics_callback
from backend.training.context import StageContext


def world_size(ctx: StageContext) -> int:
    nodes = int(ctx.config.get("num_nodes") or 1)
    return max(1, int(ctx.config.get("num_processes") or 1)) * max(1, nodes)


def use_cpu(ctx: StageContext) -> bool:
    device = str(ctx.config.get("device") or "auto")
    if device == "cpu":
        return True
    import torch

    return not torch.cuda.is_available()


def args_kwargs(ctx: StageContext, **extra: Any) -> dict[str, Any]:
    """Keyword arguments for a TRL config (a TrainingArguments subclass)."""
    cfg = ctx.config
    precision = str(cfg.get("mixed_precision") or "no")
    cpu = use_cpu(ctx)
    kwargs: dict[str, Any] = {
        "output_dir": str(ctx.checkpoints_dir),
        "max_steps": int(cfg["max_steps"]),
        "learning_rate": float(cfg["learning_rate"]),
        "per_device_train_batch_size": int(cfg["batch_size"]),
        "per_device_eval_batch_size": int(cfg["batch_size"]),
        "gradient_accumulation_steps": int(cfg.get("gradient_accumulation_steps") or 1),
        "save_strategy": "steps",
        "save_steps": int(cfg["save_steps"]),
        "save_total_limit": 2,
        "logging_steps": 1,
        "logging_first_step": True,
        "report_to": ["trackio"] if cfg.get("report_to") == "trackio" else [],
        "seed": ctx.seed,
        "data_seed": ctx.seed,
        "bf16": precision == "bf16",
        "fp16": precision == "fp16" and not cpu,
        "use_cpu": cpu,
        "disable_tqdm": True,
        "dataloader_pin_memory": not cpu,
        "lr_scheduler_type": "constant_with_warmup",
        "warmup_steps": 0,
        "gradient_checkpointing": bool(cfg.get("gradient_checkpointing", True)),
    }
    if cfg.get("report_to") == "trackio":
        kwargs["project"] = f"cstudio-job-{ctx.job_id}"
    kwargs.update(extra)
    return kwargs


def samples_per_step(ctx: StageContext) -> int:
    cfg = ctx.config
    return int(cfg["batch_size"]) * int(cfg.get("gradient_accumulation_steps") or 1) * \
        world_size(ctx)


def metrics_callback(ctx: StageContext) -> Any:
    return make_metrics_callback(ctx.job_dir / "metrics.jsonl", samples_per_step(ctx))


def tensorboard_dir(ctx: StageContext) -> Path:
    return ctx.job_dir / "tensorboard"


def tracking_callbacks(ctx: StageContext) -> list[Any]:
    """The metrics callback, plus TensorBoard's (writing to ``<job>/tensorboard``, main process
    only) when ``report_to`` is tensorboard. trackio goes through ``report_to`` (TRL's own
    callback), stored under ``<job>/trackio``."""
    callbacks = [metrics_callback(ctx)]
    tracker = str(ctx.config.get("report_to") or "none")
    if tracker == "tensorboard":
        from transformers.integrations import integration_utils

        make: Any = integration_utils.TensorBoardCallback
        board = make()
        board.logging_dir = str(tensorboard_dir(ctx))
        callbacks.append(board)
    elif tracker == "trackio":
        os.environ["TRACKIO_DIR"] = str(ctx.job_dir / "trackio")
    return callbacks


def summary_writer(ctx: StageContext) -> Any:
    """A TensorBoard SummaryWriter for stages outside the HF Trainer (PPO), or None."""
    if str(ctx.config.get("report_to") or "none") != "tensorboard":
        return None
    from torch.utils.tensorboard import SummaryWriter

    return SummaryWriter(log_dir=str(tensorboard_dir(ctx)))


def train(ctx: StageContext, trainer: Any) -> dict[str, Any]:
    """Run (or resume) training; returns the final metrics of ``trainer.train``."""
    checkpoint = ctx.latest_checkpoint()
    if checkpoint is not None:
        ctx.inputs["resumed_from"] = checkpoint.name
    output = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    summary = {k: v for k, v in dict(output.metrics).items() if isinstance(v, int | float)}
    summary["global_step"] = int(trainer.state.global_step)
    return summary


def rank_device(ctx: StageContext) -> str:
    """This process's own device: ``cpu``, or the GPU of its local rank (each process of a
    multi-GPU launch has its own; models it loads beside the trainer belong there)."""
    if use_cpu(ctx):
        return "cpu"
    return f"cuda:{int(os.environ.get('LOCAL_RANK', '0') or 0)}"


def save_final(ctx: StageContext, trainer: Any, tokenizer: Any) -> str:
    """Save the trained model (LoRA adapters merged) and tokenizer to ``output/``, once (the
    main process writes). Every process must call it: under DeepSpeed ZeRO-3 the weights are
    sharded, and ``trainer.save_model`` gathers them (a collective) before the main process
    writes them; saving the unwrapped module would write empty tensors."""
    accelerator = trainer.accelerator
    model = accelerator.unwrap_model(trainer.model)
    if hasattr(model, "merge_and_unload"):  # LoRA (refused with ZeRO-3 at validation)
        model = model.merge_and_unload()
        if accelerator.is_main_process:
            ctx.output_dir.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(str(ctx.output_dir))
    else:
        trainer.save_model(str(ctx.output_dir))
    if accelerator.is_main_process:
        tokenizer.save_pretrained(str(ctx.output_dir))
        (ctx.output_dir / "training_args.bin").unlink(missing_ok=True)
    accelerator.wait_for_everyone()
    return str(ctx.output_dir)
