"""The training stages and the validation of their configs (light: no torch/trl at import).

``validate`` fills in defaults and refuses a bad config before a job starts, with one problem
per field (``"max_steps: must be a positive integer"``); ``kinds`` describes each stage's form.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Mapping
from pathlib import Path

from backend.errors import ValidationError
from backend.training import models
from backend.training.stage_fields import STAGES, FieldSpec, StageInfo
from db.engine import Database

__all__ = ["FieldSpec", "StageInfo", "kinds", "stage", "validate"]

_DEVICE = re.compile(r"^(auto|cpu|cuda|cuda:(\d+))$")
_REWARD_ITEM = re.compile(r"^\s*(\S+?)\s*(?:[=*:]\s*(-?[0-9.eE+-]+))?\s*$")


def kinds() -> list[StageInfo]:
    return list(STAGES)


def stage(kind: str) -> StageInfo:
    for info in STAGES:
        if info.kind == kind:
            return info
    names = ", ".join(s.kind for s in STAGES)
    raise ValidationError(f"Unknown job kind {kind!r}; use one of {names}.",
                          [f"kind: {kind!r} is not one of {names}"])


def validate(kind: str, config: Mapping[str, object], *, db: Database, data_dir: Path,
             deferred: frozenset[str] = frozenset()) -> dict[str, object]:
    """The normalised config (defaults filled in) or ValidationError naming each bad field.
    Fields in ``deferred`` name outputs of jobs that have not run yet (a pipeline's ``job:<id>``
    references): kept as given, checked when the job is claimed and its stage starts."""
    info = stage(kind)
    problems: list[str] = []
    known = {f.name for f in info.fields}
    out: dict[str, object] = {}
    for name in config:
        if name not in known:
            problems.append(f"{name}: unknown field for {kind}")
    for spec in info.fields:
        raw = config.get(spec.name, spec.default)
        if spec.name in deferred:
            out[spec.name] = raw
            continue
        try:
            out[spec.name] = _coerce(spec, raw)
        except ValueError as exc:
            problems.append(f"{spec.name}: {exc}")
    if not problems:
        checked = {k: v for k, v in out.items() if k not in deferred}
        problems.extend(_check_references(kind, checked, db=db, data_dir=data_dir))
        out.update(checked)  # the check fills in the default constitution version
        problems.extend(_check_device(out))
        problems.extend(_check_stage(kind, out))
        problems.extend(_check_processes(info, out))
    if problems:
        raise ValidationError(f"The {info.title} job config has problems; fix them and queue "
                              "it again.", problems)
    return out


def _coerce(spec: FieldSpec, raw: object) -> object:
    empty_choice = raw == "" and spec.type == "choice" and None in spec.choices
    if raw is None or empty_choice or (raw == "" and spec.type in ("int", "float", "dataset")):
        if spec.required and spec.type != "model":
            raise ValueError("is required")
        if spec.type == "choice" and None not in spec.choices:
            raise ValueError(f"must be one of {_choices(spec)}")
        return None if spec.type != "str" else ""
    if spec.type == "choice":
        value = raw
        if isinstance(raw, str) and raw.strip().isdigit():
            value = int(raw)
        if value not in spec.choices:
            raise ValueError(f"must be one of {_choices(spec)}")
        return value
    if spec.type in ("int", "dataset", "job"):
        value = _as_int(raw)
        if value is None:
            raise ValueError("must be a positive integer" if (spec.minimum or 0) >= 1 or
                             spec.type != "int" else "must be an integer")
        if spec.type != "int" and value < 1:
            raise ValueError("must be a positive integer (an id)")
        _bounds(spec, value)
        return value
    if spec.type == "float":
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            raise ValueError("must be a number")
        try:
            number = float(raw)
        except ValueError:
            raise ValueError("must be a number") from None
        if number != number or number in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number")
        _bounds(spec, number)
        return number
    if spec.type == "bool":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false", "1", "0", "yes", "no"):
            return raw.lower() in ("true", "1", "yes")
        raise ValueError("must be true or false")
    if spec.type == "reward_models":
        return _reward_models(raw)
    if not isinstance(raw, str):
        raise ValueError("must be text")
    value_s = raw.strip()
    if spec.required and not value_s:
        raise ValueError("is required")
    return value_s


def _choices(spec: FieldSpec) -> str:
    return ", ".join("empty" if c is None else str(c) for c in spec.choices)


def _as_int(raw: object) -> int | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float) and raw.is_integer():
        return int(raw)
    if isinstance(raw, str) and re.fullmatch(r"\s*-?\d+\s*", raw):
        return int(raw)
    return None


def _bounds(spec: FieldSpec, value: float) -> None:
    if spec.minimum is not None and value < spec.minimum:
        if spec.minimum == 1 and spec.type == "int":
            raise ValueError("must be a positive integer")
        raise ValueError(f"must be at least {spec.minimum:g}")
    if spec.maximum is not None and value > spec.maximum:
        raise ValueError(f"must be at most {spec.maximum:g}")


def _reward_models(raw: object) -> list[dict[str, object]]:
    """A list of {"model", "weight"} or the text form 'job:3=1.0, job:5=0.5'."""
    items: list[dict[str, object]] = []
    if isinstance(raw, str):
        for part in (p for p in re.split(r"[,;\n]", raw) if p.strip()):
            m = _REWARD_ITEM.match(part)
            if not m:
                raise ValueError(f"cannot read {part.strip()!r}; write 'job:3=1.0, job:5=0.5'")
            items.append({"model": m.group(1), "weight": float(m.group(2) or 1.0)})
    elif isinstance(raw, list | tuple):
        for entry in raw:
            if not isinstance(entry, Mapping) or not isinstance(entry.get("model"), str):
                raise ValueError('each entry needs a "model" (and a "weight")')
            weight = entry.get("weight", 1.0)
            if isinstance(weight, bool) or not isinstance(weight, int | float):
                raise ValueError(f"the weight of {entry['model']} must be a number")
            items.append({"model": str(entry["model"]).strip(), "weight": float(weight)})
    else:
        raise ValueError("must be a list of reward models with weights")
    if not items:
        raise ValueError("name at least one reward model, e.g. 'job:3=1.0'")
    if all(i["weight"] == 0 for i in items):
        raise ValueError("at least one weight must be non-zero")
    return items


def _served(cfg: dict[str, object]) -> bool:
    """Whether the config's engine talks to a server (engine kinds: backend/engines/registry)."""
    from backend.engines.registry import ENGINE_KINDS

    info = ENGINE_KINDS.get(str(cfg.get("engine") or "local"))
    return info is not None and info.needs_server


def _check_references(kind: str, cfg: dict[str, object], *, db: Database, data_dir: Path
                      ) -> list[str]:
    problems: list[str] = []
    for name in ("model", "labeler_model"):
        value = cfg.get(name)
        served = kind == "sl_cai_data" and _served(cfg)
        if isinstance(value, str) and (value or name == "model") and not served:
            try:
                models.resolve(value, db=db, data_dir=data_dir)
            except ValidationError as exc:
                problems.append(f"{name}: {exc.message}")
    if kind == "sl_cai_data" and _served(cfg) and not cfg.get("base_url"):
        problems.append(f"base_url: is required for engine={cfg.get('engine')}")
    reward_models = cfg.get("reward_models")
    if isinstance(reward_models, list):
        for i, item in enumerate(reward_models):
            try:
                models.resolve(str(item["model"]), db=db, data_dir=data_dir)
            except ValidationError as exc:
                problems.append(f"reward_models[{i}]: {exc.message}")
    problems.extend(_check_datasets(cfg, db))
    if "prompt_set" in cfg:
        problems.extend(_check_prompt_set(cfg.get("prompt_set"), db))
    if "constitution_version_id" in cfg:
        problems.extend(_check_constitution(cfg, db))
    return problems


def _check_prompt_set(ref: object, db: Database) -> list[str]:
    """A stored prompt set: 'default' (the built-in one) or an id; never a path."""
    from db import prompt_set_repo

    text = str(ref if ref is not None else "").strip()
    if text not in ("", "default") and not text.isdigit():
        return [f"prompt_set: {text[:80]!r} is not a prompt set id; give 'default' or an id "
                "from `cstudio prompts list` (import a file first: `cstudio prompts import "
                "FILE` or the Training tab's upload). File paths are not accepted."]
    with db.read() as s:
        row = prompt_set_repo.resolve(s, text)
        if row is None:
            what = "the built-in prompt set is not in the store (start the studio once, or " \
                   "run `cstudio db upgrade`)" if text in ("", "default") \
                else f"no prompt set {text}; `cstudio prompts list` shows them"
            return [f"prompt_set: {what}"]
        if row.prompt_count == 0:
            return [f"prompt_set: prompt set {row.id} holds no prompts"]
    return []


def _check_datasets(cfg: dict[str, object], db: Database) -> list[str]:
    from db import dataset_repo, training_repo

    problems: list[str] = []
    with db.read() as s:
        for name, table in (("sl_cai_dataset_id", "sl_cai"),
                            ("preference_dataset_id", "preference"),
                            ("pair_dataset_id", "pair"), ("helpful_dataset_id", "pair")):
            value = cfg.get(name)
            if not isinstance(value, int):
                continue
            if table == "pair":
                if dataset_repo.get_dataset(s, dataset_id=value) is None:
                    problems.append(f"{name}: no dataset {value}; import one in the Agreement "
                                    "tab or pick another")
                continue
            row = training_repo.get_dataset(s, dataset_id=value)
            if row is None or row.kind != table:
                problems.append(f"{name}: no {table} dataset {value}; run the stage that makes "
                                "one or pick another")
            elif training_repo.count_samples(s, dataset_id=value, kind=table) == 0:
                problems.append(f"{name}: dataset {value} has no samples yet")
    return problems


def _check_constitution(cfg: dict[str, object], db: Database) -> list[str]:
    from sqlmodel import col, select

    from db.constitution_models import Constitution, ConstitutionVersion

    version_id = cfg.get("constitution_version_id")
    with db.read() as s:
        if version_id is None:
            first = s.exec(select(Constitution).order_by(col(Constitution.id)).limit(1)).first()
            head = None if first is None else s.exec(
                select(ConstitutionVersion).where(ConstitutionVersion.constitution_id == first.id)
                .order_by(col(ConstitutionVersion.number).desc()).limit(1)).first()
            if head is None:
                return ["constitution_version_id: there is no constitution yet; create one in "
                        "the Constitution tab"]
            cfg["constitution_version_id"] = head.id
        elif s.get(ConstitutionVersion, version_id) is None:
            return [f"constitution_version_id: no constitution version {version_id}"]
    return []


def _check_device(cfg: dict[str, object]) -> list[str]:
    device = str(cfg.get("device") or "auto")
    match = _DEVICE.match(device)
    if not match:
        return [f"device: {device!r} is not auto, cpu, cuda or cuda:N"]
    problems: list[str] = []
    wants_gpu = device.startswith("cuda") or cfg.get("mixed_precision") in ("bf16", "fp16") \
        or cfg.get("deepspeed_stage") is not None
    count = _gpu_count() if wants_gpu else 0
    if device.startswith("cuda"):
        index = int(match.group(2)) if match.group(2) is not None else 0
        if index >= count:
            problems.append(f"device: {device} does not exist ({count} GPUs visible)")
    if device == "cpu" and cfg.get("mixed_precision") == "fp16":
        problems.append("mixed_precision: fp16 needs a GPU; use no or bf16 on the CPU")
    if device == "cpu" and cfg.get("deepspeed_stage") is not None:
        problems.append("deepspeed_stage: DeepSpeed needs GPUs; leave it empty on the CPU")
    processes = cfg.get("num_processes")
    if isinstance(processes, int) and processes > 1 and device.startswith("cuda") \
            and processes > count:
        problems.append(f"num_processes: {processes} processes but {count} GPUs visible")
    nodes, rank = cfg.get("num_nodes"), cfg.get("node_rank")
    if isinstance(nodes, int) and isinstance(rank, int) and rank >= nodes:
        problems.append(f"node_rank: must be below num_nodes ({nodes})")
    if isinstance(nodes, int) and nodes > 1 and not cfg.get("main_process_ip"):
        problems.append("main_process_ip: is required when num_nodes > 1")
    return problems


def _gpu_count() -> int:
    try:
        import torch

        return int(torch.cuda.device_count())
    except Exception:  # torch missing or a broken driver: no usable GPU
        return 0


def _check_processes(info: StageInfo, cfg: dict[str, object]) -> list[str]:
    """Refuse what would quietly run wrong on several processes: the data stages and the
    compact PPO run on one process only (neither uses accelerate to split the work or
    synchronise gradients); LoRA adapters cannot be merged from ZeRO-3 shards."""
    processes, nodes = cfg.get("num_processes"), cfg.get("num_nodes")
    world = (processes if isinstance(processes, int) else 1) * \
        (nodes if isinstance(nodes, int) else 1)
    several = world > 1 or cfg.get("deepspeed_stage") is not None
    if several and not info.model_stage:
        return [f"num_processes: the {info.title} stage runs on one process (it generates "
                "with one engine); set num_processes and num_nodes to 1 and leave "
                "deepspeed_stage empty, or point engine=openai_compat at a vLLM server that "
                "serves several GPUs"]
    if several and info.kind == "rl" and cfg.get("algorithm") == "ppo":
        return ["num_processes: PPO runs on one GPU (it does not synchronise gradients "
                "across processes); set num_processes and num_nodes to 1 and leave "
                "deepspeed_stage empty, or use algorithm grpo or rloo on several GPUs"]
    if cfg.get("deepspeed_stage") == 3 and cfg.get("lora"):
        return ["lora: LoRA adapters cannot be merged from ZeRO-3 shards; use deepspeed_stage "
                "2 (or none) with LoRA"]
    return []


def _check_stage(kind: str, cfg: dict[str, object]) -> list[str]:
    problems: list[str] = []
    if kind == "reward":
        source = cfg.get("label_source")
        if source in ("ai", "mix") and cfg.get("preference_dataset_id") is None:
            problems.append("preference_dataset_id: is required for label_source "
                            f"{source} (AI labels)")
        if source in ("human", "mix") and cfg.get("pair_dataset_id") is None:
            problems.append(f"pair_dataset_id: is required for label_source {source} "
                            "(human labels)")
    if kind == "reward" and cfg.get("trainable_layers") and cfg.get("lora"):
        problems.append("trainable_layers: LoRA already freezes the backbone's weights; set "
                        "trainable_layers to 0 with LoRA, or turn LoRA off")
    if kind == "preference_data" and cfg.get("source") == "revisions" and \
            cfg.get("sl_cai_dataset_id") is None:
        problems.append("sl_cai_dataset_id: is required for source revisions (the SL-CAI "
                        "dataset whose revisions become the preferred side)")
    if kind == "sft" and cfg.get("helpful_samples") and cfg.get("helpful_dataset_id") is None:
        problems.append("helpful_dataset_id: is required when helpful_samples > 0")
    if cfg.get("report_to") in ("tensorboard", "trackio") and \
            importlib.util.find_spec(str(cfg["report_to"])) is None:
        problems.append(f"report_to: {cfg['report_to']} is not installed; pip install "
                        f"{cfg['report_to']}, or choose none")
    if kind == "rl" and cfg.get("use_vllm"):
        if cfg.get("algorithm") == "ppo":
            problems.append("use_vllm: PPO samples with transformers; use_vllm is for grpo "
                            "and rloo")
        elif importlib.util.find_spec("vllm") is None:
            problems.append("use_vllm: vLLM is not installed here; pip install "
                            "'constitution-studio[gpu]' on a GPU host, or turn use_vllm off")
        if cfg.get("vllm_mode") == "server" and not str(
                cfg.get("vllm_server_base_url") or "").startswith(("http://", "https://")):
            problems.append("vllm_server_base_url: give the `trl vllm-serve` URL (http://"
                            "host:8000) for vllm_mode server")
        if cfg.get("vllm_mode") == "colocate" and str(cfg.get("device")) == "cpu":
            problems.append("vllm_mode: colocated vLLM needs GPUs; use device auto or cuda")
    if kind == "rl" and cfg.get("algorithm") in ("grpo", "rloo"):
        batch, gens = cfg.get("batch_size"), cfg.get("num_generations")
        if isinstance(batch, int) and isinstance(gens, int) and batch % gens:
            problems.append(f"batch_size: must be a multiple of num_generations ({gens}) for "
                            "GRPO/RLOO")
    return problems
