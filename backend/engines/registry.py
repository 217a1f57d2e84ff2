"""Every engine kind in one place: its name, label, description and how to build it.

Settings (the allowed values of ``CSTUDIO_ENGINE``), the Settings tab, the studio's
EngineManager and the training stages all read this table. Adding an engine is one module (the
engine) and one entry here; ``tests/backend/engines/test_registry.py`` fails when a kind is
missing anywhere. This module stays light: engines are imported by their builders only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from backend.engines.base import Engine
from backend.errors import EngineError

AUTO = "auto"
AUTO_DESCRIPTION = ("a configured server (base URL and model), else the local Hub model when it "
                    "is cached or the hub is reachable, else the bundled SmolLM2-135M-Instruct "
                    "(offline)")


@dataclass(frozen=True)
class EngineRequest:
    """Plain values an engine is built from (no Settings, no state)."""

    kind: str
    data_dir: Path
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    local_model: str = "Qwen/Qwen2.5-0.5B-Instruct"
    max_in_flight: int = 64
    timeout_s: float = 120.0
    device: str | None = None
    chat_template: str | None = None  # for servers that ignore continue_final_message


@dataclass(frozen=True)
class EngineKindInfo:
    name: str
    label: str
    description: str
    build: Callable[[EngineRequest], Engine]
    needs_server: bool = False  # talks to a server at base_url (model = the server's name)
    uses_local_model: bool = False  # loads the ``local_model`` setting
    is_demo: bool = False  # random weights: outputs are meaningless
    in_stages: bool = False  # offered to the data stages (SL-CAI data, preference data)


def _openai_compat(r: EngineRequest) -> Engine:
    from backend.engines.factory import build_openai_compat

    return build_openai_compat(r.base_url, r.model, r.api_key, max_in_flight=r.max_in_flight,
                               timeout_s=r.timeout_s,
                               chat_template=r.chat_template)


def _local(r: EngineRequest) -> Engine:
    from backend.engines.factory import build_local

    return build_local(r.local_model, device=r.device, data_dir=r.data_dir)


def _smollm2(r: EngineRequest) -> Engine:
    from backend.engines.factory import build_smollm2

    return build_smollm2(r.data_dir, device=r.device)


def _vllm_inprocess(r: EngineRequest) -> Engine:
    from backend.engines.factory import build_vllm_inprocess

    return build_vllm_inprocess(r.local_model)


def _tiny(r: EngineRequest) -> Engine:
    from backend.engines.factory import build_tiny
    from backend.engines.tiny import tiny_model_dir

    return build_tiny(tiny_model_dir(r.data_dir), device=r.device)


def _scripted(r: EngineRequest) -> Engine:
    from backend.engines.scripted import ScriptedEngine

    return ScriptedEngine()


ENGINE_KINDS: dict[str, EngineKindInfo] = {
    info.name: info for info in (
        EngineKindInfo("openai_compat", "OpenAI-compatible server",
                       "a vLLM, llama.cpp or other OpenAI-compatible server at the base URL",
                       _openai_compat, needs_server=True, in_stages=True),
        EngineKindInfo("local", "Local model (transformers)",
                       "the local model (Hub id, folder or .gguf file) in this process",
                       _local, uses_local_model=True, in_stages=True),
        EngineKindInfo("smollm2", "SmolLM2-135M-Instruct (bundled, offline)",
                       "the real 135M instruct model shipped as a Python package; readable "
                       "text, weak judge", _smollm2),
        EngineKindInfo("vllm_inprocess", "vLLM in this process",
                       "the local model through vLLM's Python API (needs a GPU and vllm)",
                       _vllm_inprocess, uses_local_model=True),
        EngineKindInfo("tiny", "Demo model (random weights)",
                       "a tiny random-weights model for tests; its outputs are meaningless",
                       _tiny, is_demo=True),
        EngineKindInfo("scripted", "Scripted engine (no model)",
                       "deterministic canned answers and verdicts without a model, for tests, "
                       "benchmarks and dry runs; its outputs are meaningless",
                       _scripted, is_demo=True),
    )
}


def kind_names() -> tuple[str, ...]:
    return tuple(ENGINE_KINDS)


def setting_choices() -> tuple[str, ...]:
    """The values ``CSTUDIO_ENGINE`` accepts: ``auto`` and every kind."""
    return (AUTO, *ENGINE_KINDS)


def stage_kinds() -> tuple[str, ...]:
    """Engine kinds a data stage can use."""
    return tuple(k for k, info in ENGINE_KINDS.items() if info.in_stages)


def kind_info(kind: str) -> EngineKindInfo:
    try:
        return ENGINE_KINDS[kind]
    except KeyError:
        raise EngineError(f"Unknown engine kind {kind!r}; use one of "
                          f"{', '.join(setting_choices())}.") from None


def build(request: EngineRequest) -> Engine:
    return kind_info(request.kind).build(request)
