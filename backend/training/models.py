"""Model references of training configs, and loading them (heavy imports inside functions).

A reference is a Hub id (``org/name``), a local directory, ``"tiny"`` (the offline demo model,
built under ``<data_dir>/models/tiny-random-llama``), ``"smollm2"`` (the bundled
SmolLM2-135M-Instruct), a ``.gguf`` file or a folder holding one (converted once to a safetensors
folder under ``<data_dir>/models``, so it can be fine-tuned) or ``"job:<id>"`` (the ``output/`` of
an earlier succeeded job, read from the job row or, failing that, from
``<data_dir>/jobs/<id>/result.json``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from backend.common.job_files import JobDir
from backend.engines.tiny import tiny_model_dir
from backend.errors import FileVersionError, ValidationError
from backend.hub import hub_offline, hub_reachable, in_hub_cache
from db.engine import Database

__all__ = ["ModelRef", "hub_reachable", "job_output_dir", "resolve", "tiny_model_dir"]

RefKind = Literal["tiny", "local", "hub", "job", "gguf"]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")
_JOB_REF = re.compile(r"^job:(\d+)$")


@dataclass(frozen=True)
class ModelRef:
    ref: str  # as written in the config
    kind: RefKind
    location: str  # a local directory or a Hub id
    job_id: int | None = None


def job_output_dir(job_id: int, *, db: Database, data_dir: Path) -> Path:
    """The model directory a succeeded job produced; raises ValidationError otherwise."""
    status, artifact_dir = _job_row(job_id, db)
    files = JobDir(Path(artifact_dir)) if artifact_dir else JobDir.of(data_dir, job_id)
    if status is not None and status != "succeeded":
        raise ValidationError(f"job {job_id} is {status}, not succeeded; pick a finished job.")
    if not files.result.is_file():
        raise ValidationError(f"job {job_id} has no result (no {files.result}); pick a "
                              "succeeded job.")
    try:
        found = files.read_result()
    except FileVersionError as exc:
        raise ValidationError(f"job {job_id}: {exc.message}") from exc
    if found is None:
        raise ValidationError(f"job {job_id}: {files.result} is unreadable; pick another job.")
    outputs = found.get("outputs", {})
    model_dir = outputs.get("model_dir") if isinstance(outputs, dict) else None
    if not isinstance(model_dir, str) or not Path(model_dir).is_dir():
        raise ValidationError(f"job {job_id} made no model (it is a data stage, or its output "
                              "was removed); pick a model-training job.")
    return Path(model_dir)


def _job_row(job_id: int, db: Database) -> tuple[str | None, str]:
    """(status, artifact_dir) from the job table; (None, "") if the table or row is absent."""
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with db.read() as s:
            row = s.connection().execute(
                text("SELECT status, artifact_dir FROM job WHERE id = :id"), {"id": job_id}
            ).first()
    except SQLAlchemyError:
        return None, ""
    if row is None:
        raise ValidationError(f"no job {job_id}.")
    return str(row[0]), str(row[1] or "")


def resolve(ref: str, *, db: Database, data_dir: Path, build_tiny: bool = False) -> ModelRef:
    """Check a reference without loading the model. ``build_tiny`` (set by the stages about to
    load the model) builds the demo model and converts a GGUF model to safetensors; without it
    a GGUF reference's location is the ``.gguf`` file itself (the loaders read it directly)."""
    ref = ref.strip()
    if not ref:
        raise ValidationError("is empty; name a Hub id, a local path, 'tiny', 'smollm2', a "
                              ".gguf file or 'job:<id>'.")
    gguf = _gguf_ref(ref, data_dir, convert=build_tiny)
    if gguf is not None:
        return gguf
    if ref == "tiny":
        path = tiny_model_dir(data_dir)
        if build_tiny:
            from backend.engines.tiny import build_tiny_model

            build_tiny_model(path)
        return ModelRef(ref, "tiny", str(path))
    match = _JOB_REF.match(ref)
    if match:
        job_id = int(match.group(1))
        return ModelRef(ref, "job", str(job_output_dir(job_id, db=db, data_dir=data_dir)), job_id)
    looks_local = ref.startswith(("/", ".", "~")) or os.sep in ref.replace("/", "", 1) \
        or ref.count("/") > 1
    path = Path(ref).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ValidationError(f"{ref} has no config.json; point at a saved model directory.")
        return ModelRef(ref, "local", str(path.resolve()))
    if looks_local or path.exists() or not _HUB_ID.match(ref):
        raise ValidationError(f"{ref} does not exist; give an existing model directory, a Hub "
                              "id, 'tiny' or 'job:<id>'.")
    if hub_offline() and not in_hub_cache(ref):
        raise ValidationError(f"{ref} is not in the local Hub cache and the hub is offline "
                              "(HF_HUB_OFFLINE); download it first or give a local path.")
    if not in_hub_cache(ref) and not hub_reachable():
        raise ValidationError(f"{ref} is not in the local Hub cache and the Hub cannot be "
                              "reached from here; download it on a connected machine first "
                              "or give a local path.")
    return ModelRef(ref, "hub", ref)


def _gguf_ref(ref: str, data_dir: Path, *, convert: bool) -> ModelRef | None:
    from backend.engines.gguf_models import (
        SMOLLM2_REF,
        ensure_converted,
        find_gguf,
        require_smollm2_gguf,
    )
    from backend.errors import EngineError

    try:
        found = require_smollm2_gguf() if ref == SMOLLM2_REF else find_gguf(
            Path(ref).expanduser())
        if found is None:
            return None
        location = ensure_converted(found, data_dir) if convert else found
    except EngineError as exc:
        raise ValidationError(exc.message) from exc
    return ModelRef(ref, "gguf", str(location))


# --- loading (heavy) --------------------------------------------------------------------------

def _source(location: str) -> tuple[str, dict[str, Any]]:
    """``from_pretrained`` arguments for a location: a ``.gguf`` file loads with ``gguf_file``."""
    path = Path(location)
    if path.suffix.lower() == ".gguf" and path.is_file():
        return str(path.parent), {"gguf_file": path.name}
    return location, {}


def load_tokenizer(location: str) -> Any:
    from transformers import AutoTokenizer

    source, extra = _source(location)
    tok = AutoTokenizer.from_pretrained(source, **extra)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok


def load_causal_lm(location: str, *, dtype: str = "float32") -> Any:
    import torch
    from transformers import AutoModelForCausalLM

    source, extra = _source(location)
    return AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, dtype), **extra)


REWARD_POOLINGS = ("auto", "head", "mean")


def reward_pooling(location: str, requested: str = "auto") -> str:
    """How a reward model turns its tokens into one score: ``head`` (the architecture's own
    sequence-classification path, e.g. BERT's [CLS] pooler, a decoder's last token) or
    ``mean`` (the mean of the last hidden states over the real tokens, as sentence-transformers
    models are trained). ``auto``: what the checkpoint was trained with (``reward_pooling`` in
    its config.json, saved by the reward stage), else ``mean`` for a local sentence-transformers
    folder whose ``1_Pooling`` takes the mean of the tokens, else ``head``."""
    import json

    if requested not in REWARD_POOLINGS:
        raise ValidationError(f"Unknown reward pooling {requested!r}; use one of "
                              f"{', '.join(REWARD_POOLINGS)}.")
    if requested != "auto":
        return requested
    folder = Path(_source(location)[0])
    config = folder / "config.json"
    if config.is_file():
        saved = json.loads(config.read_text(encoding="utf-8")).get("reward_pooling")
        if saved in ("head", "mean"):
            return str(saved)
    pooling = folder / "1_Pooling" / "config.json"
    if pooling.is_file() and json.loads(pooling.read_text(encoding="utf-8")).get(
            "pooling_mode_mean_tokens"):
        return "mean"
    return "head"


def _use_mean_pooling(model: Any) -> None:
    """Replace an encoder's pooler (BERT: tanh(W·h[CLS])) by the mean of the last hidden
    states over the attention mask; the classifier head then scores that mean. The mask is
    taken from each forward call of the encoder by a pre-hook."""
    import torch

    base = model.base_model
    if getattr(base, "pooler", None) is None:
        raise ValidationError(
            f"Mean pooling needs an encoder with a pooler (BERT-like); "
            f"{type(model).__name__} has none. Set reward_pooling to head or auto.")

    class MeanPooler(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.mask: Any = None

        def forward(self, hidden: Any) -> Any:
            mask = self.mask
            if mask is None or tuple(mask.shape) != tuple(hidden.shape[:2]):
                return hidden.mean(dim=1)
            weights = mask.to(hidden.dtype).unsqueeze(-1)
            return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)

    pooler = MeanPooler()

    def keep_mask(_module: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        pooler.mask = kwargs.get("attention_mask", args[1] if len(args) > 1 else None)

    base.pooler = pooler
    base.register_forward_pre_hook(keep_mask, with_kwargs=True)


def load_reward_model(location: str, tokenizer: Any, *, dtype: str = "float32",
                      pooling: str = "auto") -> Any:
    """A sequence classifier with one output; the head is new unless the checkpoint has one.
    ``pooling`` as in :func:`reward_pooling`; the choice is kept in the model's config
    (``reward_pooling``), so a saved reward model is scored the way it was trained."""
    import torch
    from transformers import AutoModelForSequenceClassification

    how = reward_pooling(location, pooling)
    source, extra = _source(location)
    model = AutoModelForSequenceClassification.from_pretrained(
        source, num_labels=1, dtype=getattr(torch, dtype), **extra)
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    if how == "mean":
        _use_mean_pooling(model)
    model.config.reward_pooling = how
    return model


def train_top_layers(model: Any, trainable: int) -> None:
    """Freeze the embeddings and every transformer block but the top ``trainable`` ones (0:
    leave every weight trainable). What sits above the blocks (a decoder's final norm, BERT's
    pooler, the reward head) stays trainable. Backpropagation then stops at the lowest trained
    block, which on a CPU roughly halves a step for SmolLM2-135M at 8 of 30 blocks; the
    Trainer's optimizer only takes parameters that require gradients. (peft's
    ``layers_to_transform`` limits LoRA to some blocks but trains adapters, not the blocks.)"""
    import torch

    if trainable <= 0:
        return
    n = int(getattr(model.config, "num_hidden_layers", 0) or 0)
    blocks = next((m for m in model.modules()
                   if isinstance(m, torch.nn.ModuleList) and len(m) == n and n), None)
    if blocks is None:
        raise ValidationError(f"trainable_layers: {type(model).__name__} has no list of "
                              "transformer blocks to freeze; set trainable_layers to 0.")
    if trainable > n:
        raise ValidationError(f"trainable_layers: the backbone has {n} transformer blocks; "
                              f"choose at most {n} (0: train every weight).")
    frozen = {id(p) for block in list(blocks)[:n - trainable] for p in block.parameters()}
    for name, param in model.named_parameters():
        if id(param) in frozen or "embed" in name:
            param.requires_grad_(False)


def lora_config(config: dict[str, Any], task_type: str) -> Any:
    """A peft LoraConfig from the stage config, or None when LoRA is off."""
    if not config.get("lora"):
        return None
    from peft import LoraConfig

    return LoraConfig(r=int(config["lora_r"]), lora_alpha=int(config["lora_alpha"]),
                      lora_dropout=0.0, target_modules="all-linear", task_type=task_type)


def torch_dtype_for(config: dict[str, Any], *, frozen: bool = False) -> str:
    """The dtype a stage loads a model in, from ``mixed_precision``: bf16 loads bfloat16
    weights. fp16 loads float16 only for frozen models (reference, reward scorers): a model
    that is trained under fp16 autocast keeps float32 master weights (the gradient scaler
    refuses float16 ones)."""
    precision = str(config.get("mixed_precision") or "no")
    if precision == "bf16":
        return "bfloat16"
    if precision == "fp16" and frozen:
        return "float16"
    return "float32"
