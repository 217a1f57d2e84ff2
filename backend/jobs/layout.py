"""Where a job's files live: ``<data_dir>/jobs/<id>/`` (see docs/training-contract.md)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class JobDir:
    root: Path

    @staticmethod
    def of(data_dir: Path, job_id: int) -> JobDir:
        return JobDir(Path(data_dir) / "jobs" / str(job_id))

    @property
    def job_json(self) -> Path:
        return self.root / "job.json"

    @property
    def accelerate_yaml(self) -> Path:
        return self.root / "accelerate.yaml"

    @property
    def deepspeed_json(self) -> Path:
        return self.root / "deepspeed.json"

    @property
    def log(self) -> Path:
        return self.root / "log.txt"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def output(self) -> Path:
        return self.root / "output"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def result(self) -> Path:
        return self.root / "result.json"

    def write_job_json(self, data: dict[str, Any]) -> None:
        """Write job.json atomically (a reader never sees half a file)."""
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = self.job_json.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n",
                       encoding="utf-8")
        os.replace(tmp, self.job_json)

    def read_result(self) -> dict[str, Any] | None:
        try:
            data = json.loads(self.result.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        return data if isinstance(data, dict) else None

    def latest_checkpoint_step(self) -> int | None:
        """The step of the newest ``checkpoints/checkpoint-<step>`` directory, if any."""
        steps = []
        if self.checkpoints.is_dir():
            for p in self.checkpoints.iterdir():
                name, _, number = p.name.partition("-")
                if name == "checkpoint" and number.isdigit() and p.is_dir():
                    steps.append(int(number))
        return max(steps) if steps else None
