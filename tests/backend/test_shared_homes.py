"""Issue 18 point 1: each fact the services and the stages both need has one home below both."""

from __future__ import annotations

from pathlib import Path

from backend.cai.pair_formats import first_human_turn
from backend.engines.tiny import tiny_model_dir
from backend.services import engines as engine_service
from backend.training import models


def test_the_demo_model_folder_is_one_function(tmp_path: Path) -> None:
    assert tiny_model_dir(tmp_path) == tmp_path / "models" / "tiny-random-llama"
    assert models.tiny_model_dir is tiny_model_dir
    assert models.resolve("tiny", db=None, data_dir=tmp_path).location \
        == str(tiny_model_dir(tmp_path))  # type: ignore[arg-type]
    assert engine_service.tiny_model_dir is tiny_model_dir


def test_first_human_turn() -> None:
    assert first_human_turn("\n\nHuman: hi there \n\nAssistant: hello") == "hi there"
    assert first_human_turn("\n\nHuman: only a question") == "only a question"
    assert first_human_turn("no turns") is None
    assert first_human_turn("\n\nHuman:   \n\nAssistant: x") is None


def test_one_critique_log_writer() -> None:
    from backend.common import critique_log as common
    from backend.services import critique_log as service
    from backend.training import data_common, preference_data, rl_common, sl_cai_data

    assert service.DbStepLogger is common.DbStepLogger
    assert not hasattr(data_common, "CritiqueLogWriter")
    for module in (preference_data, rl_common, sl_cai_data):
        assert module.DbStepLogger is common.DbStepLogger
