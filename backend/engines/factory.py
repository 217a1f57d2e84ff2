"""Building an engine from plain values (no Settings, no state): used by the studio's
EngineManager and by the training stages, which run in their own process."""

from __future__ import annotations

from pathlib import Path

from backend.engines.base import Engine
from backend.errors import EngineError


def build_openai_compat(base_url: str | None, model: str | None, api_key: str | None = None, *,
                        max_in_flight: int = 64, timeout_s: float = 120.0) -> Engine:
    from backend.engines.openai_compat import OpenAICompatEngine

    if not (base_url and model):
        raise EngineError("Set the server's base URL and model name "
                          "(CSTUDIO_ENGINE_BASE_URL, CSTUDIO_ENGINE_MODEL).")
    return OpenAICompatEngine(base_url, model, api_key, max_in_flight=max_in_flight,
                              timeout_s=timeout_s)


def build_local(model: str, *, device: str | None = None, is_demo: bool = False,
                display_name: str | None = None) -> Engine:
    from backend.engines.local import LocalEngine

    return LocalEngine(model, device=device, is_demo=is_demo, display_name=display_name)


def build_vllm_inprocess(model: str) -> Engine:
    from backend.engines.vllm_inprocess import VLLMInProcessEngine

    return VLLMInProcessEngine(model)


def build_tiny(directory: Path, *, device: str | None = None) -> Engine:
    """The demo model (random weights), built into ``directory`` on first use."""
    from backend.engines.tiny import TINY_MODEL_NAME, build_tiny_model

    path = build_tiny_model(directory)
    return build_local(str(path), device=device, is_demo=True, display_name=TINY_MODEL_NAME)
