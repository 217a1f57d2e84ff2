from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from backend.training.callbacks import MetricsWriter, make_metrics_callback


def _lines(path: Path) -> list[dict[str, float]]:
    """The metric points (after the header line that carries the format version)."""
    header, *points = [json.loads(x) for x in path.read_text().splitlines()]
    assert header == {"format_version": 1}
    return points


def test_writer_keeps_finite_numbers_only(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    MetricsWriter(path).write(3, loss=0.5, kl=float("nan"), reward=None, progress=0.25)
    [line] = _lines(path)
    assert line["step"] == 3 and line["loss"] == 0.5 and line["progress"] == 0.25
    assert "kl" not in line and "reward" not in line and line["time"] > 0


def test_only_the_main_process_writes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RANK", "1")
    path = tmp_path / "metrics.jsonl"
    MetricsWriter(path).write(1, loss=1.0)
    assert not path.exists()


def test_callback_maps_trainer_logs(tmp_path: Path):
    path = tmp_path / "metrics.jsonl"
    callback = make_metrics_callback(path, samples_per_step=8)
    state = SimpleNamespace(global_step=0, max_steps=4, is_world_process_zero=True)
    callback.on_train_begin(None, state, None)
    state.global_step = 2
    callback.on_log(None, state, None, logs={"loss": 1.5, "learning_rate": 1e-4, "epoch": 0.5,
                                             "objective/kl": 0.2, "rewards/chosen": 0.1})
    [line] = _lines(path)
    assert line["step"] == 2 and line["loss"] == 1.5 and line["learning_rate"] == 1e-4
    assert line["kl"] == 0.2 and line["rewards_chosen"] == 0.1 and "epoch" not in line
    assert line["progress"] == 0.5 and line["samples_per_second"] > 0
