"""Shared fixtures: a fresh settings object and fully wired services on a temp SQLite file."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

# Tests never reach a model hub: set before any Hugging Face library is imported.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

import pytest

from backend.services.container import Services, start
from backend.settings import Settings

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
PAPER_DIR = SHARED_DATA / "cai-paper"
PAPER_FILES = (
    "CritiqueRevisionInstructions.json",
    "RLMadisonInstructions.json",
    "CritiqueRevisionFewShotPrompts.json",
    "RLMadisonFewShotPrompts.json",
    "RLMadisonPrecogFewShotPrompts.json",
)


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", user="tester", database_url=None)


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
