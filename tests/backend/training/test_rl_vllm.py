"""GRPO/RLOO generation through TRL's vLLM integration: the stage fields map onto TRL's
config fields, and a config asking for vLLM is refused where vLLM is not installed (no real
vLLM runs in the tests: it needs a GPU)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from backend.errors import ValidationError
from backend.services.container import Services
from backend.training import registry
from backend.training.rl import vllm_kwargs

NO_VLLM = importlib.util.find_spec("vllm") is None


def _validate(services: Services, tiny_model_path: Path, **extra: Any) -> dict[str, object]:
    return registry.validate("rl", {"model": "tiny", "reward_models": f"{tiny_model_path}=1",
                                    "batch_size": 4, **extra},
                             db=services.db, data_dir=services.settings.data_dir)


def test_vllm_fields_map_onto_trl_config():
    from trl.trainer.grpo_config import GRPOConfig
    from trl.trainer.rloo_config import RLOOConfig

    assert vllm_kwargs({"use_vllm": False, "vllm_mode": "server"}) == {}
    server = vllm_kwargs({"use_vllm": True, "vllm_mode": "server",
                          "vllm_server_base_url": "http://gpu-1:8000/"})
    assert server == {"use_vllm": True, "vllm_mode": "server",
                      "vllm_server_base_url": "http://gpu-1:8000"}
    colocate = vllm_kwargs({"use_vllm": True, "vllm_mode": "colocate",
                            "vllm_gpu_memory_utilization": 0.4})
    assert colocate == {"use_vllm": True, "vllm_mode": "colocate",
                        "vllm_gpu_memory_utilization": 0.4}
    for cls in (GRPOConfig, RLOOConfig):  # TRL accepts exactly these names
        fields = set(cls.__dataclass_fields__)
        assert set(server) | set(colocate) <= fields


@pytest.mark.skipif(not NO_VLLM, reason="vLLM is installed here")
def test_use_vllm_is_refused_without_vllm(services: Services, tiny_model_path: Path):
    with pytest.raises(ValidationError) as info:
        _validate(services, tiny_model_path, algorithm="grpo", use_vllm=True,
                  vllm_server_base_url="http://gpu-1:8000")
    assert any(p.startswith("use_vllm: vLLM is not installed") for p in info.value.problems)


def test_vllm_config_problems_name_the_field(services: Services, tiny_model_path: Path):
    with pytest.raises(ValidationError) as info:
        _validate(services, tiny_model_path, algorithm="ppo", use_vllm=True)
    text = "\n".join(info.value.problems)
    assert "use_vllm: PPO samples with transformers" in text
    assert "vllm_server_base_url: give the" in text
    cfg = _validate(services, tiny_model_path, algorithm="grpo")
    assert cfg["use_vllm"] is False and cfg["vllm_mode"] == "server"
