"""Switching the model engine from the Settings tab (handlers driven directly)."""

from __future__ import annotations

from backend.services.container import Services
from studio.settings_tab import SettingsHandlers
from tests.backend.engines.fake_vllm import FakeVLLM


def test_incomplete_server_settings_are_refused_clearly(services: Services) -> None:
    h = SettingsHandlers(services)
    out = h.apply("openai_compat", "", "", "", "", 8)
    assert "Not changed" in out and "base URL" in out
    assert services.engines.config.kind == "auto"


def test_switching_to_a_server_reports_its_health(services: Services) -> None:
    h = SettingsHandlers(services)
    with FakeVLLM(model="served/model") as server:
        out = h.apply("openai_compat", server.url, "served/model", "secret", "", 8)
        assert "Engine switched" in out and "served/model" in out and "ready" in out
        assert services.engines.config.api_key == "secret"
        kind, url, model, key_box, *_ = h.current()
        assert (kind, url, model, key_box) == ("openai_compat", server.url, "served/model", "")
    assert "NOT READY" in h.status()  # the server is gone
