"""A short run of the kill test (bench/bench_kill_durability.py runs it 100 times): a writer
process SIGKILLed at random moments loses none of the writes it acknowledged."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.bench_kill_durability import run_kills
from tests.databases import on_postgres


@pytest.mark.slow
def test_five_sigkills_lose_no_acknowledged_write(tmp_path: Path,
                                                  empty_database_url: str) -> None:
    url = empty_database_url if on_postgres() else None
    result = run_kills(5, tmp_path / "data", url, seed=1, max_delay_s=0.8)
    assert result.kills == 5
    assert result.total_acknowledged >= 5 and result.killed_mid_write == 5
    assert result.lost == [] and result.verify_failures == []
