"""The device fields of a job's config, checked against this machine before the job starts.

Fields (docs/training-contract.md): ``device`` ("auto" | "cpu" | "cuda" | "cuda:N"),
``mixed_precision`` ("no" | "bf16" | "fp16"), ``num_processes``, ``deepspeed_stage``
(None | 1 | 2 | 3), ``num_nodes``, ``node_rank``, ``main_process_ip``, ``main_process_port``.
Each problem names its field, e.g. ``device: cuda:3 does not exist (0 GPUs visible)``.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from backend.errors import ValidationError

_CUDA = re.compile(r"^cuda(?::(\d+))?$")
DEVICE_DEFAULTS: dict[str, object] = {
    "device": "auto", "mixed_precision": "no", "num_processes": 1, "deepspeed_stage": None,
    "num_nodes": 1, "node_rank": 0, "main_process_ip": None, "main_process_port": 29500,
}


@dataclass(frozen=True)
class DevicePlan:
    """What the launch will use: resolved from the config and the GPUs visible here."""

    use_cpu: bool
    gpu_ids: str | None  # "all", "N", or None on CPU
    mixed_precision: str
    num_processes: int  # on this node
    deepspeed_stage: int | None
    num_nodes: int
    node_rank: int
    main_process_ip: str | None
    main_process_port: int


def visible_gpus() -> int:
    """CUDA devices torch can see here (0 without torch's CUDA build)."""
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a core dependency
        return 0
    return int(torch.cuda.device_count()) if torch.cuda.is_available() else 0


def _int(config: Mapping[str, object], name: str, problems: list[str]) -> int:
    value = config.get(name, DEVICE_DEFAULTS[name])
    if isinstance(value, bool) or not isinstance(value, int):
        problems.append(f"{name}: must be a whole number, not {value!r}")
        return int(DEVICE_DEFAULTS[name])  # type: ignore[call-overload, no-any-return]
    return value


def plan_devices(config: Mapping[str, object],
                 gpu_count: Callable[[], int] = visible_gpus) -> DevicePlan:
    """Resolve the device fields, or raise ValidationError naming every bad field."""
    problems: list[str] = []
    device = str(config.get("device", DEVICE_DEFAULTS["device"]) or "auto").strip()
    mp = str(config.get("mixed_precision", DEVICE_DEFAULTS["mixed_precision"]) or "no")
    n_proc = _int(config, "num_processes", problems)
    nodes = _int(config, "num_nodes", problems)
    rank = _int(config, "node_rank", problems)
    port = _int(config, "main_process_port", problems)
    stage_raw = config.get("deepspeed_stage")
    ip_raw = config.get("main_process_ip")
    ip = str(ip_raw).strip() if ip_raw not in (None, "") else None

    gpus = gpu_count()
    match = _CUDA.match(device)
    use_cpu = device == "cpu" or (device == "auto" and gpus == 0)
    gpu_ids: str | None = None
    if device not in ("auto", "cpu") and not match:
        problems.append(f"device: {device!r} is not a device; use auto, cpu, cuda or cuda:N")
    elif match:
        index = match.group(1)
        if gpus == 0:
            problems.append(f"device: {device} does not exist (0 GPUs visible); use cpu or "
                            "auto")
        elif index is not None and int(index) >= gpus:
            problems.append(f"device: {device} does not exist ({gpus} GPUs visible: "
                            f"cuda:0 to cuda:{gpus - 1})")
        gpu_ids = index if index is not None else "all"
    elif not use_cpu:
        gpu_ids = "all"

    if mp not in ("no", "bf16", "fp16"):
        problems.append(f"mixed_precision: {mp!r} is not one of no, bf16, fp16")
    elif mp == "fp16" and use_cpu:
        problems.append("mixed_precision: fp16 needs a GPU; use bf16 or no on CPU")
    if n_proc < 1:
        problems.append(f"num_processes: must be at least 1, not {n_proc}")
    elif n_proc > 1:
        if use_cpu:
            problems.append(f"num_processes: {n_proc} processes need GPUs; on CPU use 1")
        elif match and match.group(1) is not None:
            problems.append(f"num_processes: {n_proc} processes cannot share the one GPU "
                            f"{device}; use device cuda (all GPUs)")
        elif gpus and n_proc > gpus:
            problems.append(f"num_processes: {n_proc} is more than the {gpus} GPUs visible")
    stage: int | None = None
    if stage_raw not in (None, "", 0, "none", "None"):
        if isinstance(stage_raw, bool) or stage_raw not in (1, 2, 3, "1", "2", "3"):
            problems.append(f"deepspeed_stage: {stage_raw!r} is not a ZeRO stage (1, 2 or 3, "
                            "or empty for none)")
        else:
            stage = int(str(stage_raw))
            if use_cpu:
                problems.append("deepspeed_stage: DeepSpeed ZeRO needs GPUs; leave it empty "
                                "on CPU")
            elif importlib.util.find_spec("deepspeed") is None:
                problems.append("deepspeed_stage: the deepspeed package is not installed "
                                "(pip install -e '.[gpu]')")
    if nodes < 1:
        problems.append(f"num_nodes: must be at least 1, not {nodes}")
    elif not 0 <= rank < nodes:
        problems.append(f"node_rank: must be between 0 and {nodes - 1}, not {rank}")
    if nodes > 1 and not ip:
        problems.append("main_process_ip: required when num_nodes > 1 (the address of "
                        "node 0)")
    if not 1 <= port <= 65535:
        problems.append(f"main_process_port: {port} is not a port (1-65535)")
    if problems:
        raise ValidationError("The job's device settings cannot run here.", problems)
    return DevicePlan(use_cpu=use_cpu, gpu_ids=gpu_ids, mixed_precision=mp,
                      num_processes=n_proc, deepspeed_stage=stage, num_nodes=nodes,
                      node_rank=rank, main_process_ip=ip, main_process_port=port)
