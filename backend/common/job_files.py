"""The job directory: where a job's files live and how its JSON files are versioned.

One home for the contract between the job system (``backend.jobs``, ``backend.services.jobs``)
and the stages (``backend.training``): ``<data_dir>/jobs/<id>/`` holding ``job.json``,
``accelerate.yaml``, ``deepspeed.json``, ``log.txt``, ``metrics.jsonl``, ``checkpoints/``,
``output/``, ``manifest.json`` and ``result.json`` (docs/training-contract.md).

``job.json``, ``manifest.json`` and ``result.json`` carry ``"format_version"``;
``metrics.jsonl`` starts with a header line ``{"format_version": N}`` (metric readers skip it:
it has no ``step``). A reader checks the version: a file without one was written before
versions existed and reads as version 1; a newer or unknown version raises
``FileVersionError``, which says to upgrade the studio that reads it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backend.errors import FileVersionError

FORMAT_KEY = "format_version"
# The version this studio writes, per file; it reads every version up to it.
JOB_JSON_VERSION = 1
MANIFEST_VERSION = 1
RESULT_VERSION = 1
METRICS_VERSION = 1


def check_version(data: Mapping[str, Any], path: Path | str, supported: int) -> int:
    """The format version of a file's content (1 when absent); FileVersionError when it is
    newer than ``supported`` or not a positive whole number."""
    version = data.get(FORMAT_KEY, 1)
    name = Path(path).name
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise FileVersionError(
            f"{path}: {FORMAT_KEY} {version!r} is not a version this studio knows; {name} "
            "was damaged or written by another program. Restore it from the job that wrote it.")
    if version > supported:
        raise FileVersionError(
            f"{path}: {name} has {FORMAT_KEY} {version}, newer than the {supported} this "
            "studio reads; upgrade this studio (it was written by a newer one).")
    return version


def versioned(data: Mapping[str, Any], version: int) -> dict[str, Any]:
    """``data`` with its format version set."""
    return {**data, FORMAT_KEY: version}


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON so a reader never sees half a file (a temporary file, then a rename)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)


def read_versioned_json(path: Path, supported: int) -> dict[str, Any]:
    """A versioned JSON object file, checked. OSError when it cannot be read, ValueError when
    it is not a JSON object, FileVersionError for a version this studio does not read."""
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict):
        raise ValueError(f"{path} does not hold a JSON object")
    check_version(data, path, supported)
    return data


def metrics_header() -> str:
    """The first line of a metrics.jsonl file."""
    return json.dumps({FORMAT_KEY: METRICS_VERSION}, separators=(",", ":")) + "\n"


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

    @property
    def dataset_marker(self) -> Path:
        """Which dataset a data stage's job appends to (so a restart resumes it)."""
        return self.root / "dataset.json"

    # --- job.json (written by the job service, read by the stage) ------------------------------

    def write_job_json(self, data: Mapping[str, Any]) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_json_atomic(self.job_json, versioned(data, JOB_JSON_VERSION))

    def read_job_json(self) -> dict[str, Any]:
        data = read_versioned_json(self.job_json, JOB_JSON_VERSION)
        if "kind" not in data or "config" not in data:
            raise ValueError(f"{self.job_json} lacks kind/config")
        return data

    # --- manifest.json (provenance, written by the stage) --------------------------------------

    def write_manifest(self, data: Mapping[str, Any]) -> None:
        write_json_atomic(self.manifest, versioned(data, MANIFEST_VERSION))

    def read_manifest(self) -> dict[str, Any] | None:
        """The manifest (None when absent or unreadable); FileVersionError when newer."""
        try:
            return read_versioned_json(self.manifest, MANIFEST_VERSION)
        except (OSError, ValueError):
            return None

    # --- result.json (written by the stage on success) -----------------------------------------

    def write_result(self, outputs: Mapping[str, Any], summary: Mapping[str, Any]) -> None:
        write_json_atomic(self.result, versioned(
            {"outputs": dict(outputs), "summary": dict(summary)}, RESULT_VERSION))

    def read_result(self) -> dict[str, Any] | None:
        """The result (None when absent or unreadable); FileVersionError when newer."""
        try:
            return read_versioned_json(self.result, RESULT_VERSION)
        except (OSError, ValueError):
            return None
