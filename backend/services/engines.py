"""Which model engine the studio uses, built lazily from Settings (or from the UI).

With nothing configured (``engine=auto``): an OpenAI-compatible server if a base URL is set;
otherwise the local model (a small instruct model from the Hub) when the machine is online;
otherwise — offline (``HF_HUB_OFFLINE=1``) or the download fails — the tiny demo model with
random weights, which the UI labels as meaningless.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass, replace
from pathlib import Path

from backend.access import Action, Principal, require
from backend.engines import factory
from backend.engines.base import Engine, EngineInfo, Health
from backend.errors import EngineError, ValidationError
from backend.settings import Settings
from db.audit_chain import append_event
from db.engine import Database

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class EngineConfig:
    kind: str = "auto"
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    local_model: str = "Qwen/Qwen2.5-0.5B-Instruct"
    max_in_flight: int = 64
    timeout_s: float = 120.0

    @staticmethod
    def from_settings(settings: Settings) -> EngineConfig:
        key = settings.engine_api_key.get_secret_value() if settings.engine_api_key else None
        return EngineConfig(settings.engine, settings.engine_base_url, settings.engine_model, key,
                            settings.local_model, settings.engine_max_in_flight,
                            settings.engine_timeout_s)


class EngineManager:
    """Holds the active engine; builds it on first use and rebuilds it when reconfigured."""

    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self._settings = settings
        self._db = db  # where engine switches are recorded (audit events), if given
        self._config = EngineConfig.from_settings(settings)
        self._engine: Engine | None = None
        self._note = ""
        self._owned = True
        self._lock = threading.Lock()

    @property
    def config(self) -> EngineConfig:
        return self._config

    @property
    def note(self) -> str:
        """Why the engine in use is the one it is (e.g. a fallback to the demo model)."""
        return self._note

    def tiny_model_dir(self) -> Path:
        return self._settings.data_dir / "models" / "tiny-random-llama"

    def get(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine, self._note = self._build(self._config)
            return self._engine

    def info(self) -> EngineInfo | None:
        """The active engine's description, without building one."""
        return self._engine.info if self._engine is not None else None

    def configure(self, config: EngineConfig, *, actor: Principal) -> Engine:
        """Switch engines; the old one is closed only once the new one is ready."""
        require(actor, Action.CONFIGURE)
        if config.kind == "openai_compat" and not (config.base_url and config.model):
            raise ValidationError("An OpenAI-compatible engine needs a base URL and a model name.")
        engine, note = self._build(config)
        with self._lock:
            old, owned = self._engine, self._owned
            self._engine, self._config, self._note, self._owned = engine, config, note, True
        if old is not None and owned:
            old.close()
        if self._db is not None:
            with self._db.write() as s:
                append_event(s, actor=actor.name, action="engine.configure", entity_type="engine",
                             entity_id=config.kind,
                             payload={"kind": config.kind, "base_url": config.base_url,
                                      "model": config.model, "local_model": config.local_model,
                                      "max_in_flight": config.max_in_flight,
                                      "api_key_set": bool(config.api_key)})
        return engine

    def use(self, engine: Engine, note: str = "") -> None:
        """Adopt an engine built elsewhere (tests, embedding); the caller keeps ownership."""
        with self._lock:
            self._engine, self._note, self._owned = engine, note, False

    def health(self) -> Health:
        try:
            return self.get().health()
        except EngineError as exc:
            return Health(False, exc.message)

    def close(self) -> None:
        with self._lock:
            if self._engine is not None and self._owned:
                self._engine.close()
            self._engine = None

    # --- building ----------------------------------------------------------------------------

    def _build(self, config: EngineConfig) -> tuple[Engine, str]:
        kind = config.kind
        if kind == "auto":
            if config.base_url and config.model:
                return self._build(replace(config, kind="openai_compat"))
            local = Path(config.local_model).exists() or _in_hub_cache(config.local_model)
            if not local and self._settings.hub_offline():
                return self._tiny(), ("The machine is offline (HF_HUB_OFFLINE), so the demo "
                                      "model is in use.")
            if not local and not _hub_reachable():
                return self._tiny(), (f"The model hub is unreachable, so {config.local_model} "
                                      "could not be downloaded; the demo model is in use.")
            try:
                return self._local(config.local_model), ""
            except EngineError as exc:
                log.warning("falling back to the tiny demo model: %s", exc)
                return self._tiny(), f"Could not load {config.local_model}: {exc.message} " \
                                     "The demo model is in use instead."
        if kind == "openai_compat":
            return factory.build_openai_compat(config.base_url, config.model, config.api_key,
                                               max_in_flight=config.max_in_flight,
                                               timeout_s=config.timeout_s), ""
        if kind == "local":
            return self._local(config.local_model), ""
        if kind == "vllm_inprocess":
            return factory.build_vllm_inprocess(config.local_model), ""
        if kind == "tiny":
            return self._tiny(), ""
        raise EngineError(f"Unknown engine kind {kind!r}; use auto, openai_compat, local, tiny "
                          "or vllm_inprocess.")

    def _local(self, model: str) -> Engine:
        return factory.build_local(model)

    def _tiny(self) -> Engine:
        return factory.build_tiny(self.tiny_model_dir())


def _in_hub_cache(model_id: str) -> bool:
    """Whether the Hugging Face cache already holds this model's config (no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(model_id, "config.json")
    except Exception:  # a malformed id or cache; treat as not cached
        return False
    return isinstance(found, str)


def _hub_reachable(timeout_s: float = 4.0) -> bool:
    """A quick probe, so a machine without network falls back in seconds, not minutes."""
    import httpx

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        httpx.head(f"{endpoint}/api/models", timeout=timeout_s)
    except httpx.HTTPError:
        return False
    return True
