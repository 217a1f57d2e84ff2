"""The demo model, built once per test session, and an engine on it (no network: offline)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from backend.engines.tiny import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_path: Path) -> Iterator[object]:
    from backend.engines.local import LocalEngine
    from backend.engines.tiny import TINY_MODEL_NAME

    engine = LocalEngine(str(tiny_model_path), device="cpu", max_batch_size=32, is_demo=True,
                         display_name=TINY_MODEL_NAME)
    yield engine
    engine.close()


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """The demo model is 64 wide: extra threads only add synchronisation, and under
    ``pytest -n 2`` on two CPUs they oversubscribe the machine (several times slower).
    Tests that never touch torch (it is imported by the fixtures above) are left alone."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
