"""metrics.jsonl: one JSON object per line, flushed per line (see docs/training-contract.md).

``MetricsWriter`` appends lines; ``MetricsFileCallback`` is the transformers TrainerCallback
that model stages add to their trainer. Data stages write ``progress`` lines directly.
"""

from __future__ import annotations

import json
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

from backend.common.job_files import metrics_header

# Names the Training tab plots; TRL's names on the left are mapped to them.
_RENAMES = {
    "train_samples_per_second": "samples_per_second",
    "rewards/margins": "reward_margin",
    "objective/kl": "kl",
}
_SKIP = {"epoch", "total_flos", "train_runtime", "train_steps_per_second", "step"}


def is_main_process() -> bool:
    return os.environ.get("RANK", "0") == "0" and os.environ.get("LOCAL_RANK", "0") == "0"


class MetricsWriter:
    """Appends metric points to ``path`` (only on the main process under accelerate)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def write(self, step: int, **metrics: float | int | None) -> None:
        if not is_main_process():
            return
        point: dict[str, float | int] = {"step": int(step), "time": time.time()}
        for key, value in metrics.items():
            if isinstance(value, bool) or value is None:
                continue
            number = float(value)
            if math.isfinite(number):
                point[key] = number
        line = json.dumps(point, separators=(",", ":")) + "\n"
        with self._lock, self.path.open("a", encoding="utf-8") as fh:
            if fh.tell() == 0:  # a new file starts with its format version
                line = metrics_header() + line
            fh.write(line)
            fh.flush()


def metric_name(key: str) -> str:
    return _RENAMES.get(key, key.replace("/", "_"))


def _trainer_callback_base() -> type:
    from transformers import TrainerCallback

    return TrainerCallback


def make_metrics_callback(path: Path, samples_per_step: int) -> Any:
    """A TrainerCallback writing each ``on_log`` to metrics.jsonl, with throughput and progress.

    ``samples_per_step``: examples consumed per optimizer step on all processes together.
    """
    base = _trainer_callback_base()

    class MetricsFileCallback(base):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            self.writer = MetricsWriter(path)
            self._last: tuple[int, float] | None = None

        def on_train_begin(self, args: Any, state: Any, control: Any, **kw: Any) -> None:
            self._last = (int(state.global_step), time.perf_counter())

        def on_log(self, args: Any, state: Any, control: Any, logs: dict[str, Any] | None = None,
                   **kw: Any) -> None:
            if not state.is_world_process_zero or not logs:
                return
            step = int(state.global_step)
            point: dict[str, float | int | None] = {}
            for key, value in logs.items():
                if key in _SKIP or isinstance(value, bool) or not isinstance(value, int | float):
                    continue
                point[metric_name(key)] = value
            now = time.perf_counter()
            if self._last is not None and step > self._last[0] and now > self._last[1] \
                    and "samples_per_second" not in point:
                point["samples_per_second"] = (step - self._last[0]) * samples_per_step / \
                    (now - self._last[1])
                self._last = (step, now)
            if state.max_steps:
                point["progress"] = min(1.0, step / state.max_steps)
            self.writer.write(step, **point)

    return MetricsFileCallback()
