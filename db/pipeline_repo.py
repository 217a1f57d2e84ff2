"""Keyword-only repository functions for pipelines and job dependencies."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select as sa_select
from sqlalchemy import update
from sqlmodel import Session, col, select

from db.base_models import utcnow
from db.job_models import Job
from db.pipeline_models import JobDependency, Pipeline, PipelineStage

BLOCKING = ("failed", "cancelled")
NOT_RUN = "Not run:"  # how the error of a job stopped by a failed upstream stage starts


def create_pipeline(session: Session, *, name: str, constitution_version_id: int,
                    config: dict[str, object], created_by: str) -> Pipeline:
    row = Pipeline(name=name, constitution_version_id=constitution_version_id, config=config,
                   created_by=created_by)
    session.add(row)
    session.flush()
    return row


def add_stage(session: Session, *, pipeline_id: int, position: int, stage: str, job_id: int,
              needs: Sequence[int]) -> None:
    session.add(PipelineStage(pipeline_id=pipeline_id, position=position, stage=stage,
                              job_id=job_id))
    for upstream in needs:
        session.add(JobDependency(job_id=job_id, depends_on_id=upstream))
    session.flush()


def get_pipeline(session: Session, *, pipeline_id: int) -> Pipeline | None:
    return session.get(Pipeline, pipeline_id)


def list_pipelines(session: Session, *, limit: int = 100) -> Sequence[Pipeline]:
    return session.exec(select(Pipeline).order_by(col(Pipeline.id).desc()).limit(limit)).all()


def stages(session: Session, *, pipeline_id: int) -> list[tuple[PipelineStage, Job]]:
    rows = session.exec(select(PipelineStage, Job).join(Job, col(Job.id) == PipelineStage.job_id)
                        .where(PipelineStage.pipeline_id == pipeline_id)
                        .order_by(col(PipelineStage.position))).all()
    return [(stage, job) for stage, job in rows]


def dependencies(session: Session, *, job_id: int) -> list[int]:
    return list(session.exec(select(JobDependency.depends_on_id)
                             .where(JobDependency.job_id == job_id)
                             .order_by(col(JobDependency.depends_on_id))).all())


def set_comparison(session: Session, *, pipeline_id: int, comparison_id: int | None,
                   error: str = "") -> None:
    session.execute(update(Pipeline).where(col(Pipeline.id) == pipeline_id)
                    .values(comparison_id=comparison_id, error=error, updated_at=utcnow()))


def set_error(session: Session, *, pipeline_id: int, error: str) -> None:
    session.execute(update(Pipeline).where(col(Pipeline.id) == pipeline_id)
                    .values(error=error[:4000], updated_at=utcnow()))


def stop_blocked(session: Session) -> list[int]:
    """Finish every queued job that needs a failed or cancelled job: it can never start. Its
    status follows the upstream one and its error names the stage that stopped the chain (the
    first one, through jobs stopped this way). The ids of the jobs stopped."""
    dep = Job.__table__.alias("upstream")  # type: ignore[attr-defined]
    stopped: list[int] = []
    for _ in range(100):  # a chain stops one link per round
        rows = session.execute(
            sa_select(col(JobDependency.job_id), dep.c.id, dep.c.kind, dep.c.status, dep.c.error)
            .join(dep, dep.c.id == JobDependency.depends_on_id)
            .join(Job, col(Job.id) == JobDependency.job_id)
            .where(col(Job.status) == "queued").where(dep.c.status.in_(BLOCKING))
            .order_by(col(JobDependency.job_id))).all()
        if not rows:
            break
        for job_id, up_id, up_kind, up_status, up_error in rows:
            if up_error.startswith(NOT_RUN):  # name the stage that stopped the chain
                error = up_error
            else:
                error = (f"{NOT_RUN} the {up_kind} stage (job #{up_id}) {up_status}. Fix or "
                         "resume that stage (Resume pipeline resumes every stopped stage).")
            done = session.execute(
                update(Job).where(col(Job.id) == job_id).where(col(Job.status) == "queued")
                .values(status=up_status, error=error, finished_at=utcnow(),
                        updated_at=utcnow()))
            if done.rowcount:  # type: ignore[attr-defined]
                stopped.append(int(job_id))
    return stopped
