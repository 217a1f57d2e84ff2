"""The real-server tier: one llama.cpp server (SmolLM2) for the whole session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bench.llamacpp_server import LlamaServer, server_available, smollm2_gguf


@pytest.fixture(scope="session")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    why = server_available()
    if why is not None:
        pytest.skip(why)
    model = smollm2_gguf()
    assert model is not None
    log: Path = tmp_path_factory.mktemp("llama") / "server.log"
    with LlamaServer(model, log=log) as server:
        yield server
