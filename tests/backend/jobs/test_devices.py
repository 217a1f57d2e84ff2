"""Device fields: refused before a job starts, naming the field; the accelerate and DeepSpeed
configs generated from them load in accelerate."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from backend.errors import ValidationError
from backend.jobs.accelerate_config import write_launch_configs
from backend.jobs.devices import DevicePlan, plan_devices


def problems(config: dict[str, object], gpus: int = 0) -> list[str]:
    with pytest.raises(ValidationError) as info:
        plan_devices(config, lambda: gpus)
    return info.value.problems


def test_a_gpu_that_does_not_exist_is_refused_naming_the_field() -> None:
    assert problems({"device": "cuda:3"}) == [
        "device: cuda:3 does not exist (0 GPUs visible); use cpu or auto"]
    assert problems({"device": "cuda:3"}, gpus=2) == [
        "device: cuda:3 does not exist (2 GPUs visible: cuda:0 to cuda:1)"]
    assert problems({"device": "cuda"})[0].startswith("device: cuda does not exist")
    assert problems({"device": "tpu"})[0].startswith("device: 'tpu' is not a device")


@pytest.mark.parametrize(("config", "gpus", "field"), [
    ({"device": "cpu", "mixed_precision": "fp16"}, 0, "mixed_precision"),
    ({"mixed_precision": "fp8"}, 1, "mixed_precision"),
    ({"device": "cpu", "num_processes": 2}, 0, "num_processes"),
    ({"device": "cuda", "num_processes": 4}, 2, "num_processes"),
    ({"device": "cuda:0", "num_processes": 2}, 2, "num_processes"),
    ({"num_processes": 0}, 1, "num_processes"),
    ({"num_processes": "two"}, 1, "num_processes"),
    ({"device": "cpu", "deepspeed_stage": 2}, 0, "deepspeed_stage"),
    ({"device": "cuda", "deepspeed_stage": 4}, 1, "deepspeed_stage"),
    ({"num_nodes": 2, "node_rank": 0}, 1, "main_process_ip"),
    ({"num_nodes": 2, "node_rank": 2, "main_process_ip": "10.0.0.1"}, 1, "node_rank"),
    ({"main_process_port": 70000}, 1, "main_process_port"),
])
def test_bad_device_fields_name_the_field(config: dict[str, object], gpus: int,
                                          field: str) -> None:
    found = problems(config, gpus)
    assert len(found) == 1 and found[0].startswith(f"{field}: "), found


def test_auto_resolves_to_cpu_or_all_gpus() -> None:
    assert plan_devices({"device": "auto"}, lambda: 0).use_cpu
    plan = plan_devices({"device": "auto", "num_processes": 2, "mixed_precision": "bf16"},
                        lambda: 2)
    assert (plan.use_cpu, plan.gpu_ids, plan.num_processes) == (False, "all", 2)
    assert plan_devices({"device": "cuda:1"}, lambda: 2).gpu_ids == "1"


def _load_accelerate(path: Path) -> object:
    from accelerate.commands.config.config_args import ClusterConfig

    return ClusterConfig.from_yaml_file(yaml_file=str(path))


def test_cpu_config_loads_in_accelerate(tmp_path: Path) -> None:
    plan = plan_devices({"device": "cpu", "mixed_precision": "bf16"}, lambda: 0)
    write_launch_configs(plan, tmp_path / "a.yaml", tmp_path / "ds.json")
    loaded = _load_accelerate(tmp_path / "a.yaml")
    assert loaded.use_cpu is True  # type: ignore[attr-defined]
    assert loaded.num_processes == 1  # type: ignore[attr-defined]
    assert loaded.mixed_precision == "bf16"  # type: ignore[attr-defined]
    assert str(loaded.distributed_type).endswith("NO")  # type: ignore[attr-defined]
    assert not (tmp_path / "ds.json").exists()


def test_multi_gpu_multi_node_and_zero_configs(tmp_path: Path) -> None:
    plan = DevicePlan(use_cpu=False, gpu_ids="all", mixed_precision="bf16", num_processes=4,
                      deepspeed_stage=3, num_nodes=2, node_rank=1,
                      main_process_ip="10.0.0.1", main_process_port=29501)
    write_launch_configs(plan, tmp_path / "a.yaml", tmp_path / "ds.json")
    raw = yaml.safe_load((tmp_path / "a.yaml").read_text())
    assert raw["distributed_type"] == "DEEPSPEED"
    assert (raw["num_processes"], raw["num_machines"], raw["machine_rank"]) == (8, 2, 1)
    assert (raw["main_process_ip"], raw["main_process_port"]) == ("10.0.0.1", 29501)
    assert raw["deepspeed_config"] == {"deepspeed_config_file": str(tmp_path / "ds.json"),
                                       "zero3_init_flag": True}
    ds = json.loads((tmp_path / "ds.json").read_text())
    assert ds["zero_optimization"]["stage"] == 3 and ds["bf16"] == {"enabled": True}
    assert _load_accelerate(tmp_path / "a.yaml").num_machines == 2  # type: ignore[attr-defined]
    plain = DevicePlan(use_cpu=False, gpu_ids="all", mixed_precision="no", num_processes=2,
                       deepspeed_stage=None, num_nodes=1, node_rank=0, main_process_ip=None,
                       main_process_port=29500)
    write_launch_configs(plain, tmp_path / "b.yaml", tmp_path / "ds2.json")
    assert yaml.safe_load((tmp_path / "b.yaml").read_text())["distributed_type"] == "MULTI_GPU"
