"""What a stage gets from the entry point: its job directory, config, database and paths
(the directory's layout and file versions: ``backend.common.job_files``)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backend.common.job_files import JobDir
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
    def files(self) -> JobDir:
        return JobDir(self.job_dir)

    @property
    def checkpoints_dir(self) -> Path:
        return self.files.checkpoints

    @property
    def output_dir(self) -> Path:
        return self.files.output

    @property
    def metrics(self) -> MetricsWriter:
        return MetricsWriter(self.files.metrics)

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


def _complete(path: Path) -> bool:
    """HF Trainer writes trainer_state.json last; the compact PPO writes state.pt last."""
    return (path / "trainer_state.json").is_file() or (path / "ppo_state.json").is_file()
