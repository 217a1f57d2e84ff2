"""The provenance manifest of a run (manifest.json in the job directory, versioned: see
``backend.common.job_files``).

Written when the stage starts (config, packages, git commit, seeds, host, constitution) and
completed when it ends (the datasets and models it read, end time, status).
"""

from __future__ import annotations

import hashlib
import json
import platform
import socket
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

from backend.training.context import StageContext
from db.engine import Database

PACKAGES = ("torch", "transformers", "trl", "peft", "accelerate", "datasets")
REPO_ROOT = Path(__file__).resolve().parents[2]


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_commit(root: Path = REPO_ROOT) -> str | None:
    try:
        done = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = done.stdout.strip()
    return sha if done.returncode == 0 and len(sha) == 40 else None


def constitution_info(db: Database, version_id: int | None) -> dict[str, Any] | None:
    if version_id is None:
        return None
    from db.constitution_models import Constitution, ConstitutionVersion

    with db.read() as s:
        row = s.get(ConstitutionVersion, version_id)
        parent = None if row is None else s.get(Constitution, row.constitution_id)
    if row is None:
        return {"version_id": version_id, "content_hash": None}
    return {"version_id": version_id, "content_hash": row.content_hash,
            "constitution_id": row.constitution_id, "number": row.number,
            "name": None if parent is None else parent.name}


def job_constitution_version(ctx: StageContext) -> int | None:
    """The constitution version of the run: the config's, else the job row's (a pipeline's
    training stages carry the pipeline's version there; issue 17)."""
    version = ctx.config.get("constitution_version_id")
    if isinstance(version, int):
        return version
    if ctx.job_id is None:
        return None
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        with ctx.db.read() as s:
            row = s.connection().execute(
                text("SELECT constitution_version_id FROM job WHERE id = :id"),
                {"id": ctx.job_id}).first()
    except SQLAlchemyError:
        return None
    return None if row is None or row[0] is None else int(row[0])


def sha256_json(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def start(ctx: StageContext) -> dict[str, Any]:
    # a resumed run keeps the history of its attempts (FileVersionError on a newer manifest)
    previous: dict[str, Any] = ctx.files.read_manifest() or {}
    attempts = list(previous.get("attempts", []))
    if previous.get("started_at"):
        attempts.append({k: previous.get(k) for k in ("started_at", "ended_at", "status",
                                                      "resumed_from")})
    manifest: dict[str, Any] = {
        "job_id": ctx.job_id,
        "kind": ctx.kind,
        "config": ctx.config,
        "config_sha256": sha256_json(ctx.config),
        "constitution": constitution_info(ctx.db, job_constitution_version(ctx)),
        "datasets": {},
        "models": {},
        "packages": package_versions(),
        "git_commit": git_commit(),
        "seeds": {"seed": ctx.seed, "config_seed": ctx.config.get("seed")},
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "python_executable": sys.executable,
        "started_at": now(),
        "ended_at": None,
        "status": "running",
        "resumed_from": None,
        "attempts": attempts,
    }
    ctx.files.write_manifest(manifest)
    return manifest


def finish(ctx: StageContext, manifest: dict[str, Any], *, status: str,
           error: str | None = None) -> None:
    manifest["datasets"] = ctx.inputs.get("datasets", {})
    manifest["models"] = ctx.inputs.get("models", {})
    manifest["resumed_from"] = ctx.inputs.get("resumed_from")
    manifest["ended_at"] = now()
    manifest["status"] = status
    if error:
        manifest["error"] = error
    ctx.files.write_manifest(manifest)
