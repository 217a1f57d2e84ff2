from __future__ import annotations

from pathlib import Path

import pytest

from backend.engines import factory
from backend.errors import EngineError


def test_openai_compat_needs_url_and_model():
    with pytest.raises(EngineError, match="base URL and model name"):
        factory.build_openai_compat(None, "m")
    engine = factory.build_openai_compat("http://127.0.0.1:9/v1", "m")
    assert engine.info.kind == "openai_compat" and engine.info.model == "m"
    engine.close()


def test_tiny_is_built_once_and_labelled_demo(tmp_path: Path, tiny_model_path: Path):
    engine = factory.build_local(str(tiny_model_path), device="cpu", is_demo=True)
    assert engine.info.is_demo and engine.info.kind == "tiny"
    engine.close()
    with pytest.raises(EngineError, match="no such directory"):
        factory.build_local(str(tmp_path / "missing"))
