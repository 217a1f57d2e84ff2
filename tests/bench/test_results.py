"""bench/results.py: a benchmark's row is replaced in place, and two scripts that report the
same figure name keep one row each."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import results


@pytest.fixture
def doc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "benchmarks.md"
    path.write_text("| name | summary | figures | machine | date | command |\n"
                    "|---|---|---|---|---|---|\n\n## Notes\n", encoding="utf-8")
    monkeypatch.setattr(results, "DOC", path)
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path / "results")
    return path


def _rows(doc: Path) -> list[str]:
    return [line for line in doc.read_text(encoding="utf-8").splitlines()
            if line.startswith("| speed |")]


def test_a_rerun_replaces_its_own_row_and_leaves_another_scripts_row(doc: Path) -> None:
    results.record("speed", {"x": 1.0}, "x", "python -m bench.tiny --n 1", "tiny first")
    results.record("speed", {"x": 2.0}, "x", "python -m bench.real --n 1", "real first")
    results.record("speed", {"x": 3.0}, "x", "python -m bench.tiny --n 2", "tiny again")
    results.record("speed", {"x": 4.0}, "x", "python -m bench.real", "real, no flags")
    results.record("speed", {"x": 5.0}, "x", "python -m bench.real", "real again")

    rows = _rows(doc)
    assert len(rows) == 2
    assert "tiny again" in rows[0] and "x=3" in rows[0]
    assert "real again" in rows[1] and "x=5" in rows[1]
    assert doc.read_text(encoding="utf-8").rstrip().endswith("## Notes")
