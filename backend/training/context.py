"""What a stage gets from the entry point: its job directory, config, database and paths."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.training.callbacks import MetricsWriter
from db.engine import Database

_CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class StageResult:
    outputs: dict[str, Any]
    summary: dict[str, Any]


@dataclass
class StageContext:
    job_dir: Path
    job_id: int | None
    kind: str
    config: dict[str, Any]
    db: Database
    data_dir: Path
    seed: int
    actor: str = "training"
    # The server's API key (CSTUDIO_ENGINE_API_KEY of the worker's environment), never written
    # to the job directory; sent by every engine a stage builds on a server.
    engine_api_key: str | None = None
    # Filled in by the stage for the provenance manifest.
    inputs: dict[str, Any] = field(default_factory=dict)

    @property
    def checkpoints_dir(self) -> Path:
        return self.job_dir / "checkpoints"

    @property
    def output_dir(self) -> Path:
        return self.job_dir / "output"

    @property
    def metrics(self) -> MetricsWriter:
        return MetricsWriter(self.job_dir / "metrics.jsonl")

    def latest_checkpoint(self) -> Path | None:
        """The checkpoint with the highest step that finished saving, or None."""
        if not self.checkpoints_dir.is_dir():
            return None
        best: tuple[int, Path] | None = None
        for path in self.checkpoints_dir.iterdir():
            match = _CHECKPOINT.match(path.name)
            if match and path.is_dir() and _complete(path):
                step = int(match.group(1))
                if best is None or step > best[0]:
                    best = (step, path)
        return best[1] if best else None

    def record_input(self, name: str, value: Any) -> None:
        self.inputs[name] = value


def _complete(path: Path) -> bool:
    """HF Trainer writes trainer_state.json last; the compact PPO writes state.pt last."""
    return (path / "trainer_state.json").is_file() or (path / "ppo_state.json").is_file()


def read_job(job_dir: Path) -> dict[str, Any]:
    data = json.loads((job_dir / "job.json").read_text(encoding="utf-8"))
    if not isinstance(data, dict) or "kind" not in data or "config" not in data:
        raise ValueError(f"{job_dir / 'job.json'} lacks kind/config")
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)
