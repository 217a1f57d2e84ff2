"""Tailing metrics.jsonl: whole lines only, garbage skipped, offsets exact."""

from __future__ import annotations

import json
from pathlib import Path

from backend.jobs.metrics import read_new


def test_reads_complete_lines_from_an_offset(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    assert read_new(path, 0) == ([], 0)
    first = json.dumps({"step": 1, "time": 10.0, "loss": 2.0, "note": "x", "ok": True}) + "\n"
    path.write_text(first + 'not json\n{"step": 2, "loss": 1.5')  # the last line is half
    points, offset = read_new(path, 0)
    assert [(p.step, p.wall_time, p.metrics, p.line_offset) for p in points] == [
        (1, 10.0, {"loss": 2.0}, 0)]
    assert offset == len(first) + len("not json\n")
    with path.open("a") as fh:
        fh.write(', "kl": NaN, "learning_rate": 0.001}\n')
    points, offset2 = read_new(path, offset)
    assert [(p.step, p.metrics) for p in points] == [(2, {"loss": 1.5, "learning_rate": 0.001})]
    assert points[0].line_offset == offset and offset2 == path.stat().st_size
    assert read_new(path, offset2) == ([], offset2)


def test_a_file_started_afresh_is_read_from_the_beginning(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text(json.dumps({"step": 7, "loss": 1.0}) + "\n")
    points, offset = read_new(path, 10_000)
    assert [p.step for p in points] == [7] and offset == path.stat().st_size
