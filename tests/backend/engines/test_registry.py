"""Engine kinds live in one registry that Settings, the Settings tab, the studio's engine manager,
the training stages and the docs all follow: a kind missing anywhere fails here, and adding one
entry is enough for every reader to offer and build it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from pydantic import ValidationError as SettingsError

from backend.access import Principal, Role
from backend.engines import registry
from backend.engines.base import ChoiceScores, EngineInfo, Generation, GenerationParams, Health
from backend.engines.base import Prompt as EnginePrompt
from backend.services.container import Services
from backend.services.engines import EngineConfig
from backend.settings import Settings
from backend.training import stage_fields
from studio import settings_tab

ROOT = Path(__file__).resolve().parents[3]
ADMIN = Principal("admin", Role.ADMIN)


class _Fake:
    def __init__(self, kind: str) -> None:
        self.info = EngineInfo(kind=kind, model="fake-model")
        self.closed = False

    def generate(self, prompts: Sequence[EnginePrompt], params: GenerationParams
                 ) -> list[Generation]:
        return [Generation(text="ok", prompt_sent="") for _ in prompts]

    def stream(self, prompt: EnginePrompt, params: GenerationParams) -> Iterator[str]:
        yield "ok"

    def score_choices(self, prompts: Sequence[EnginePrompt], choices: Sequence[str]
                      ) -> list[ChoiceScores]:
        return []

    def health(self) -> Health:
        return Health(True, "fine")

    def close(self) -> None:
        self.closed = True


def test_every_kind_is_a_setting_a_settings_tab_choice_and_documented() -> None:
    kinds = registry.kind_names()
    assert set(kinds) >= {"openai_compat", "local", "smollm2", "vllm_inprocess", "tiny",
                          "scripted"}
    for kind in registry.setting_choices():
        assert Settings(engine=kind).engine == kind
    with pytest.raises(SettingsError, match="unknown engine"):
        Settings(engine="mockllm")
    assert [value for _, value in settings_tab.kind_choices()] == list(registry.setting_choices())
    for doc in ("README.md", "docs/architecture.md", "docs/user-guide.md"):
        text = (ROOT / doc).read_text(encoding="utf-8")
        missing = [k for k in kinds if f"`{k}`" not in text]
        assert missing == [], f"{doc} does not name the engine kinds {missing}"


def test_the_data_stages_offer_the_registry_kinds() -> None:
    [field] = [f for s in stage_fields.STAGES if s.kind == "sl_cai_data" for f in s.fields
               if f.name == "engine"]
    assert set(field.choices) == set(registry.stage_kinds()) == {"local", "openai_compat"}


def test_one_new_entry_is_offered_and_built_everywhere(monkeypatch: pytest.MonkeyPatch,
                                                       services: Services) -> None:
    built: list[registry.EngineRequest] = []

    def build(request: registry.EngineRequest) -> _Fake:
        built.append(request)
        return _Fake(request.kind)

    monkeypatch.setitem(registry.ENGINE_KINDS, "echo",
                        registry.EngineKindInfo("echo", "Echo", "repeats", build))
    assert Settings(engine="echo").engine == "echo"
    assert ("Echo (echo)", "echo") in settings_tab.kind_choices()
    engine = services.engines.configure(EngineConfig(kind="echo"), actor=ADMIN)
    assert engine.info.kind == "echo" and built[0].data_dir == services.settings.data_dir


def test_an_unknown_kind_says_which_exist(services: Services) -> None:
    from backend.errors import EngineError

    with pytest.raises(EngineError, match="use one of auto, openai_compat"):
        services.engines.configure(EngineConfig(kind="nope"), actor=ADMIN)


def test_the_scripted_engine_is_a_kind_chosen_only_explicitly(services: Services) -> None:
    from backend.engines.scripted import ScriptedEngine

    info = registry.kind_info("scripted")
    assert info.is_demo and not info.in_stages and not info.needs_server
    assert "scripted" not in registry.stage_kinds()
    engine = services.engines.configure(EngineConfig(kind="scripted"), actor=ADMIN)
    assert isinstance(engine, ScriptedEngine) and engine.info.kind == "scripted"
    assert engine.health().ok
    [gen] = engine.generate([EnginePrompt(text="Hi")], GenerationParams())
    assert gen.text == "out1" and gen.prompt_sent == "Hi"
    question = "Which?\n\nOptions:\n(A) [[[a bad one]]]\n(B) [[[a good one]]]"
    [scores] = engine.score_choices([EnginePrompt(text=question)], ["A", "B"])
    assert scores.probs["A"] == pytest.approx(0.2)
