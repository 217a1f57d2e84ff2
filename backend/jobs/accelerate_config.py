"""The ``accelerate launch`` config (and, for ZeRO, a DeepSpeed config) generated from a job's
device plan and written into its directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from backend.jobs.devices import DevicePlan


def deepspeed_config(plan: DevicePlan) -> dict[str, Any]:
    """A DeepSpeed config whose batch and optimiser values the HF Trainer fills in ("auto")."""
    assert plan.deepspeed_stage is not None
    zero: dict[str, Any] = {"stage": plan.deepspeed_stage, "overlap_comm": True,
                            "contiguous_gradients": True}
    if plan.deepspeed_stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {
        "zero_optimization": zero,
        "bf16": {"enabled": plan.mixed_precision == "bf16"},
        "fp16": {"enabled": plan.mixed_precision == "fp16"},
        "train_micro_batch_size_per_gpu": "auto",
        "train_batch_size": "auto",
        "gradient_accumulation_steps": "auto",
        "gradient_clipping": "auto",
    }


def accelerate_config(plan: DevicePlan, deepspeed_file: Path | None = None) -> dict[str, Any]:
    total = plan.num_processes * plan.num_nodes
    if plan.deepspeed_stage is not None:
        distributed = "DEEPSPEED"
    elif total > 1:
        distributed = "MULTI_GPU"
    else:
        distributed = "NO"
    cfg: dict[str, Any] = {
        "compute_environment": "LOCAL_MACHINE",
        "debug": False,
        "distributed_type": distributed,
        "mixed_precision": plan.mixed_precision,
        "use_cpu": plan.use_cpu,
        "num_processes": total,
        "num_machines": plan.num_nodes,
        "machine_rank": plan.node_rank,
        "main_training_function": "main",
        "rdzv_backend": "static",
        "same_network": True,
        "downcast_bf16": "no",
        "enable_cpu_affinity": False,
        "tpu_env": [],
        "tpu_use_cluster": False,
        "tpu_use_sudo": False,
    }
    if plan.gpu_ids is not None:
        cfg["gpu_ids"] = plan.gpu_ids
    if plan.num_nodes > 1:
        cfg["main_process_ip"] = plan.main_process_ip
        cfg["main_process_port"] = plan.main_process_port
    if plan.deepspeed_stage is not None:
        assert deepspeed_file is not None
        cfg["deepspeed_config"] = {"deepspeed_config_file": str(deepspeed_file),
                                   "zero3_init_flag": plan.deepspeed_stage == 3}
    return cfg


def write_launch_configs(plan: DevicePlan, accelerate_yaml: Path, deepspeed_json: Path) -> None:
    """Write accelerate.yaml (and deepspeed.json when a ZeRO stage is asked for)."""
    ds_file = None
    if plan.deepspeed_stage is not None:
        deepspeed_json.write_text(json.dumps(deepspeed_config(plan), indent=2) + "\n",
                                  encoding="utf-8")
        ds_file = deepspeed_json
    accelerate_yaml.write_text(yaml.safe_dump(accelerate_config(plan, ds_file),
                                              sort_keys=True), encoding="utf-8")
