"""What the data stages share: the engine from the stage config, the dataset a job appends to
(so a restarted job resumes), and chunking. The critique-log writer is
``backend.common.critique_log.DbStepLogger`` (shared with the services)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from backend.cai.constitution import ConstitutionContent
from backend.cai.critique_loop import clean_text
from backend.common.job_files import write_json_atomic
from backend.engines import registry
from backend.engines.base import Engine
from backend.engines.factory import build_local, build_tiny
from backend.errors import ValidationError
from backend.training import models
from backend.training.context import StageContext
from backend.training.inputs import load_constitution, load_prompts, note_dataset, note_model
from db import training_repo


def engine_device(ctx: StageContext) -> str | None:
    device = str(ctx.config.get("device") or "auto")
    return None if device == "auto" else device


def build_engine(ctx: StageContext, ref: str, role: str) -> Engine:
    """An engine on a model reference of the config (or the configured server)."""
    kind = str(ctx.config.get("engine") or "local")
    if registry.kind_info(kind).needs_server:
        note_model(ctx, role, ref, str(ctx.config["base_url"]))
        return registry.build(registry.EngineRequest(
            kind, data_dir=ctx.data_dir, base_url=str(ctx.config["base_url"]), model=ref,
            api_key=ctx.engine_api_key))
    resolved = models.resolve(ref, db=ctx.db, data_dir=ctx.data_dir)
    note_model(ctx, role, ref, resolved.location)
    if resolved.kind == "tiny":
        return build_tiny(models.tiny_model_dir(ctx.data_dir), device=engine_device(ctx))
    return build_local(resolved.location, device=engine_device(ctx), data_dir=ctx.data_dir)


def usable_prompts(raw: list[str]) -> list[str]:
    out: list[str] = []
    for prompt in raw:
        try:
            out.append(clean_text(prompt, "prompt"))
        except ValidationError:
            continue
    return out


@dataclass(frozen=True)
class DataRun:
    """What a data stage starts from: the constitution version, the usable prompts, the
    dataset this job appends to, and the prompt positions already stored (on a restart)."""

    version_id: int
    content: ConstitutionContent
    prompts: list[str]
    dataset_id: int
    done: set[int]


def open_data_run(ctx: StageContext, kind: str, title: str) -> DataRun:
    """Load the stage's constitution and prompt set, note the prompt set in the manifest, and
    find (or make) the job's dataset with the positions it already holds."""
    cfg = ctx.config
    version_id = int(cfg["constitution_version_id"])
    content = load_constitution(ctx.db, version_id)
    prompt_set = load_prompts(ctx.db, str(cfg["prompt_set"]), int(cfg["max_prompts"]))
    prompts = usable_prompts(prompt_set.prompts)
    note_dataset(ctx, "prompt_set", {"source": prompt_set.source, "sha256": prompt_set.sha256,
                                     "prompts": len(prompts)})
    dataset_id = job_dataset(ctx, kind, name=f"{title} (job {ctx.job_id})",
                             model=str(cfg["model"]), source=prompt_set.source,
                             source_sha256=prompt_set.sha256)
    with ctx.db.read() as s:
        done = training_repo.done_positions(s, dataset_id=dataset_id, kind=kind)
    return DataRun(version_id, content, prompts, dataset_id, done)


def job_dataset(ctx: StageContext, kind: str, *, name: str, model: str, source: str,
                source_sha256: str, constitution_version_id: int | None = None) -> int:
    """The dataset this job appends to: the one recorded in the job directory (or made by
    this job id), else a new one (its constitution version: the config's unless given)."""
    marker = ctx.files.dataset_marker
    with ctx.db.write() as s:
        if marker.is_file():
            found = json.loads(marker.read_text(encoding="utf-8")).get("dataset_id")
            row = training_repo.get_dataset(s, dataset_id=int(found)) if found else None
            if row is not None and row.id is not None:
                return row.id
        if ctx.job_id is not None:
            row = training_repo.dataset_of_job(s, job_id=ctx.job_id, kind=kind)
            if row is not None and row.id is not None:
                write_json_atomic(marker, {"dataset_id": row.id})
                return row.id
        row = training_repo.create_dataset(
            s, kind=kind, name=name, job_id=_existing_job(s, ctx.job_id),
            constitution_version_id=constitution_version_id
            or ctx.config.get("constitution_version_id"), model=model,
            config=ctx.config, source=source, source_sha256=source_sha256,
            created_by=ctx.actor)
        assert row.id is not None
        dataset_id = row.id
    write_json_atomic(marker, {"dataset_id": dataset_id})
    return dataset_id


def _existing_job(session: Any, job_id: int | None) -> int | None:
    """``job_id`` if the job table has that row (the foreign key needs it), else None."""
    if job_id is None:
        return None
    from sqlalchemy import text
    from sqlalchemy.exc import SQLAlchemyError

    try:
        row = session.connection().execute(text("SELECT id FROM job WHERE id = :id"),
                                           {"id": job_id}).first()
    except SQLAlchemyError:
        return None
    return job_id if row is not None else None


def pending_chunks(total: int, chunk_size: int, done: set[int]) -> Iterator[tuple[int, list[int]]]:
    """(chunk number, positions) of the fixed grid of chunks not stored yet. A chunk is stored
    in one transaction, so it is either complete or absent."""
    for k, start in enumerate(range(0, total, chunk_size)):
        positions = [p for p in range(start, min(total, start + chunk_size)) if p not in done]
        if positions:
            yield k, positions
