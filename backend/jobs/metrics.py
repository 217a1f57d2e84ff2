"""Reading a job's metrics.jsonl incrementally (from a byte offset, whole lines only).

The file's header line (``{"format_version": N}``, see ``backend.common.job_files``) is checked
when it is read; a file without one was written before versions existed (version 1)."""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.common.job_files import FORMAT_KEY, METRICS_VERSION, check_version

MAX_READ = 4 * 1024 * 1024
# the metric names the Training tab plots (a stage may write others; they are stored too)
PLOTTED = ("loss", "reward", "kl", "learning_rate", "samples_per_second", "grad_norm",
           "eval_accuracy", "progress")


@dataclass(frozen=True)
class MetricPoint:
    line_offset: int
    step: int
    wall_time: float
    metrics: dict[str, float]


def parse_line(line: bytes) -> tuple[int, float, dict[str, float]] | None:
    """``(step, time, metrics)`` of one metrics line, or None when it is not a metrics line."""
    obj = _json_object(line)
    return None if obj is None else _point(obj)


def _json_object(line: bytes) -> dict[str, Any] | None:
    try:
        obj: Any = json.loads(line)
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _point(obj: dict[str, Any]) -> tuple[int, float, dict[str, float]] | None:
    step = obj.get("step")
    if isinstance(step, bool) or not isinstance(step, int | float) or not math.isfinite(step):
        return None
    when = obj.get("time")
    wall = float(when) if isinstance(when, int | float) and not isinstance(when, bool) \
        else time.time()
    values = {str(k)[:64]: float(v) for k, v in obj.items()
              if k not in ("step", "time") and isinstance(v, int | float)
              and not isinstance(v, bool) and math.isfinite(v)}
    return int(step), wall, values


def read_new(path: Path, offset: int) -> tuple[list[MetricPoint], int]:
    """The complete lines written after ``offset``, and the offset after the last of them.
    A file that got shorter than ``offset`` (the stage started it afresh) is read from 0."""
    try:
        size = path.stat().st_size
    except OSError:
        return [], offset
    if size < offset:
        offset = 0
    if size == offset:
        return [], offset
    with path.open("rb") as fh:
        fh.seek(offset)
        data = fh.read(MAX_READ)
    end = data.rfind(b"\n")
    if end < 0:
        return [], offset
    points = []
    pos = 0
    for line in data[:end + 1].split(b"\n")[:-1]:
        parsed = _read_line(line, path) if line.strip() else None
        if parsed is not None:
            step, wall, values = parsed
            points.append(MetricPoint(offset + pos, step, wall, values))
        pos += len(line) + 1
    return points, offset + end + 1


def _read_line(line: bytes, path: Path) -> tuple[int, float, dict[str, float]] | None:
    """A metrics point, None for other lines; the header's version is checked
    (FileVersionError when this studio does not read it)."""
    obj = _json_object(line)
    if obj is None:
        return None
    if FORMAT_KEY in obj:
        check_version(obj, path, METRICS_VERSION)
    return _point(obj)
