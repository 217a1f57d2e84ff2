"""``python -m backend.training.entry --job-dir DIR``: run one stage in its job directory.

Reads job.json, re-validates the config (defaults filled in), writes manifest.json, runs the
stage, completes the manifest and writes result.json on success. Exit code 0 = succeeded,
1 = the stage failed, 2 = the job directory or config is unusable. The last lines of the
output say why.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from backend.common.job_files import JobDir
from backend.errors import StudioError
from backend.threads import apply_torch_threads, threads_from_env
from backend.training import manifest, registry
from backend.training.callbacks import is_main_process
from backend.training.context import StageContext, StageResult
from db.anchor import protect
from db.engine import Database
from db.record_seal import SEALED_TABLES


def open_context(job_dir: Path) -> StageContext:
    job = JobDir(job_dir).read_job_json()
    kind = str(job["kind"])
    data_dir = Path(str(job.get("data_dir") or job_dir.parent.parent))
    db = Database(str(job["database_url"]))
    protect(db, data_dir, sealed_tables=SEALED_TABLES)  # seal and anchor what the stage writes
    raw = job["config"]
    if not isinstance(raw, dict):
        raise ValueError("job.json: config must be an object")
    config = registry.validate(kind, raw, db=db, data_dir=data_dir)
    job_id = job.get("job_id")
    seed = job.get("seed", config.get("seed", 0))
    return StageContext(job_dir=job_dir, job_id=int(job_id) if job_id is not None else None,
                        kind=kind, config=config, db=db, data_dir=data_dir,
                        seed=int(seed) if isinstance(seed, int) else 0,
                        actor=str(job.get("created_by") or "training"),
                        engine_api_key=os.environ.get("CSTUDIO_ENGINE_API_KEY") or None)


def run_stage(ctx: StageContext) -> StageResult:
    module: Any = importlib.import_module(registry.stage(ctx.kind).module)
    result = module.run(ctx)
    assert isinstance(result, StageResult)
    return result


def _seed_everything(seed: int) -> None:
    import random

    random.seed(seed)
    try:
        from transformers import set_seed

        set_seed(seed)
    except ImportError:  # the data stages do not need transformers' helpers
        pass


def _set_threads() -> None:
    """The worker's CSTUDIO_TORCH_THREADS (see backend/threads.py); unset: torch's default."""
    threads = threads_from_env()
    if threads is not None:
        apply_torch_threads(threads)
        print(f"torch threads: {threads}", flush=True)


def _record_constitution(result: StageResult, record: dict[str, Any]) -> None:
    """The constitution version's content hash in result.json, and the model card beside a
    trained model (issue 17: every artifact records the constitution it was made under)."""
    constitution = record.get("constitution")
    if constitution:
        result.outputs["constitution"] = constitution
    model_dir = result.outputs.get("model_dir")
    if isinstance(model_dir, str) and Path(model_dir).is_dir():
        from backend.training import model_card

        model_card.write(Path(model_dir), record, result.summary)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m backend.training.entry",
                                     description="Run one training stage in its job directory.")
    parser.add_argument("--job-dir", required=True, type=Path)
    args = parser.parse_args(argv)
    job_dir: Path = args.job_dir.resolve()
    try:
        ctx = open_context(job_dir)
    except (OSError, ValueError, KeyError, StudioError) as exc:
        print(f"error: cannot start the job in {job_dir}: {exc}", file=sys.stderr, flush=True)
        return 2
    main_process = is_main_process()
    if not main_process and not registry.stage(ctx.kind).model_stage:
        ctx.db.dispose()  # data stages run on the main process only (no duplicate samples)
        return 0
    try:
        record = manifest.start(ctx) if main_process else {}
    except StudioError as exc:  # a manifest of a newer studio: say so, change nothing
        print(f"error: cannot start the job in {job_dir}: {exc.message}", file=sys.stderr,
              flush=True)
        ctx.db.dispose()
        return 2
    print(f"stage {ctx.kind} starting in {job_dir}", flush=True)
    try:
        _set_threads()
        _seed_everything(ctx.seed)
        result = run_stage(ctx)
    except BaseException as exc:
        if main_process:
            manifest.finish(ctx, record, status="failed", error=f"{type(exc).__name__}: {exc}")
        if isinstance(exc, KeyboardInterrupt | SystemExit):
            raise
        traceback.print_exc()
        message = exc.message if isinstance(exc, StudioError) else f"{type(exc).__name__}: {exc}"
        print(f"error: stage {ctx.kind} failed: {message}", file=sys.stderr, flush=True)
        return 1
    finally:
        ctx.db.dispose()
    if main_process:
        manifest.finish(ctx, record, status="succeeded")
        _record_constitution(result, record)
        ctx.files.write_result(result.outputs, result.summary)
    print(f"stage {ctx.kind} succeeded: {result.outputs}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
