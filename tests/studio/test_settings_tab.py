"""Switching the model engine from the Settings tab (handlers driven directly)."""

from __future__ import annotations

import json

import pytest
from sqlmodel import select

from backend.access import Principal, Role
from backend.errors import PermissionDeniedError
from backend.services.container import Services
from backend.services.engines import EngineConfig
from bench.fake_vllm import FakeVLLM
from db.audit_models import AuditEvent
from studio.settings_tab import SettingsHandlers


def test_incomplete_server_settings_are_refused_clearly(services: Services) -> None:
    h = SettingsHandlers(services)
    out = h.apply(None, "openai_compat", "", "", "", "", 8)
    assert "Not changed" in out and "base URL" in out
    assert services.engines.config.kind == "tiny"  # the tests' default (conftest)


def test_switching_to_a_server_reports_its_health(services: Services) -> None:
    h = SettingsHandlers(services)
    with FakeVLLM(model="served/model") as server:
        out = h.apply(None, "openai_compat", server.url, "served/model", "secret", "", 8)
        assert "Engine switched" in out and "served/model" in out and "ready" in out
        assert services.engines.config.api_key == "secret"
        kind, url, model, key_box, *_ = h.current()
        assert (kind, url, model, key_box) == ("openai_compat", server.url, "served/model", "")
    assert "NOT READY" in h.status()  # the server is gone
    with services.db.read() as s:
        [event] = s.exec(select(AuditEvent).where(AuditEvent.action == "engine.configure")).all()
    payload = json.loads(event.payload)
    assert event.actor == "tester" and payload["model"] == "served/model"
    assert payload["api_key_set"] is True and "secret" not in event.payload


def test_only_admins_switch_engines(services: Services) -> None:
    config = EngineConfig(kind="tiny")
    for role in (r for r in Role if r is not Role.ADMIN):
        with pytest.raises(PermissionDeniedError, match="may not change engine settings"):
            services.engines.configure(config, actor=Principal("someone", role))
    assert services.engines.config.kind == "tiny"  # the tests' default (conftest)


def test_apply_keeps_the_previous_engine_when_the_check_fails(services: Services) -> None:
    h = SettingsHandlers(services)
    services.engines.get()
    out = h.apply(None, "openai_compat", "http://127.0.0.1:9", "served/model", "", "", 8)
    assert "Not changed" in out and "did not pass its health check" in out
    assert "stays in use" in out and services.engines.config.kind == "tiny"
    assert "demo model" in h.status()


def test_the_engine_list_comes_from_the_registry(services: Services) -> None:
    from backend.engines.registry import setting_choices
    from studio.settings_tab import kind_choices, kind_help

    assert [v for _, v in kind_choices()] == list(setting_choices())
    assert "weak judge" in kind_help() and "smollm2" in kind_help()


def test_the_header_names_smollm2_and_its_weak_judging(services: Services) -> None:
    from backend.engines.base import EngineInfo
    from studio.app import _model_line

    class _Named:
        info = EngineInfo(kind="smollm2", model="SmolLM2-135M-Instruct")

        def close(self) -> None:
            pass

    services.engines.use(_Named())  # type: ignore[arg-type]
    line = _model_line(services)
    assert r"SmolLM2\-135M\-Instruct" in line and "weak judge" in line  # markdown-escaped
    assert "random weights" not in line
