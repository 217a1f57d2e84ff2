from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from backend.cai.pair_formats import first_human_turn
from backend.errors import ValidationError
from backend.services.prompt_sets import load_first_human_turns
from tests.conftest import SHARED_DATA

HH = SHARED_DATA / "hh-rlhf" / "harmless-base-test.first2000.jsonl.gz"


def test_first_human_turn() -> None:
    assert first_human_turn("\n\nHuman: Hi there\n\nAssistant: Hello\n\nHuman: more") == \
        "Hi there"
    assert first_human_turn("no turns") is None


def test_shared_hh_rlhf_file_gives_unique_prompts() -> None:
    if not HH.is_file():
        pytest.skip("shared HH-RLHF sample not available")
    prompts = load_first_human_turns(HH, limit=100)
    assert len(prompts) == 100 and len(set(prompts)) == 100
    assert all(p and "Assistant:" not in p for p in prompts)


def test_bad_lines_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "p.jsonl.gz"
    with gzip.open(path, "wt") as fh:
        fh.write(json.dumps({"chosen": "\n\nHuman: ok\n\nAssistant: x"}) + "\n{broken\n")
    with pytest.raises(ValidationError, match="line 2"):
        load_first_human_turns(path)
