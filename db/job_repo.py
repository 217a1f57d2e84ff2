"""Keyword-only repository functions for training jobs and their metric points.

The state changes that race between workers (claiming a queued job, finishing a running one,
marking a dead worker's job interrupted) are single conditional UPDATEs: each names the status
it expects, and the caller learns from the row count whether it won. That holds on SQLite and
PostgreSQL alike, with no row locks held across Python code.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Unpack

from sqlalchemy import func, update
from sqlmodel import Session, col, select

from db.base_models import utcnow
from db.job_models import Job, JobChanges, JobMetric, NewJob
from db.pipeline_models import JobDependency


def create_job(session: Session, **fields: Unpack[NewJob]) -> Job:
    row = Job(**fields)
    session.add(row)
    session.flush()
    return row


def get_job(session: Session, *, job_id: int) -> Job | None:
    return session.get(Job, job_id)


def list_jobs(session: Session, *, limit: int = 50, offset: int = 0,
              statuses: Sequence[str] | None = None, kinds: Sequence[str] | None = None
              ) -> Sequence[Job]:
    query = select(Job)
    if statuses:
        query = query.where(col(Job.status).in_(statuses))
    if kinds:
        query = query.where(col(Job.kind).in_(kinds))
    return session.exec(query.order_by(col(Job.id).desc()).offset(offset).limit(limit)).all()


def count_jobs(session: Session, *, statuses: Sequence[str] | None = None,
               kinds: Sequence[str] | None = None) -> int:
    query = select(func.count()).select_from(Job)
    if statuses:
        query = query.where(col(Job.status).in_(statuses))
    if kinds:
        query = query.where(col(Job.kind).in_(kinds))
    return int(session.exec(query).one())


def update_job(session: Session, *, job_id: int, expect_status: Sequence[str] | None = None,
               expect_worker: str | None = None, **fields: Unpack[JobChanges]) -> bool:
    """Set ``fields`` (and ``updated_at``) on the job if its status is one of ``expect_status``
    (any status when None) and, when given, its worker is ``expect_worker``. True when the row
    was changed."""
    stmt = update(Job).where(col(Job.id) == job_id)
    if expect_status is not None:
        stmt = stmt.where(col(Job.status).in_(expect_status))
    if expect_worker is not None:
        stmt = stmt.where(col(Job.worker) == expect_worker)
    result = session.execute(stmt.values(updated_at=utcnow(), **fields))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def claim_next(session: Session, *, worker: str, kinds: Sequence[str] | None = None
               ) -> Job | None:
    """Atomically move the oldest queued job to ``running`` for ``worker``; None if none is
    queued. A compare-and-set on the status: when two workers race for one job, one UPDATE
    matches and the other moves on to the next candidate.

    On PostgreSQL the candidate is picked ``FOR UPDATE SKIP LOCKED``: a row another worker's
    transaction is claiming is passed over at once (no waiting on its lock, no lost race), so
    workers on several hosts sharing one queue each take a different job. SQLite has no row
    locks; its writers serialise on ``BEGIN IMMEDIATE`` (``Database.write``).

    A job that needs other jobs (``job_dependency``, issue 17's pipelines) is a candidate only
    when every job it needs has succeeded."""
    bind = session.get_bind()
    upstream = Job.__table__.alias("upstream")  # type: ignore[attr-defined]
    waiting = (select(JobDependency.job_id)
               .join(upstream, upstream.c.id == JobDependency.depends_on_id)
               .where(JobDependency.job_id == Job.id)
               .where(upstream.c.status != "succeeded").exists())
    skip_locked = bind.dialect.name == "postgresql"
    for _ in range(20):
        query = select(Job.id).where(Job.status == "queued").where(~waiting)
        if kinds:
            query = query.where(col(Job.kind).in_(kinds))
        query = query.order_by(col(Job.id)).limit(1)
        if skip_locked:
            query = query.with_for_update(skip_locked=True)
        job_id = session.exec(query).first()
        if job_id is None:
            return None
        now = utcnow()
        if update_job(session, job_id=job_id, expect_status=("queued",), status="running",
                      worker=worker[:200], heartbeat_at=now, started_at=now, pid=None,
                      pgid=None, exit_code=None, error="", finished_at=None):
            session.flush()
            row = session.get(Job, job_id)
            if row is not None:
                session.refresh(row)
            return row
    return None


def heartbeat(session: Session, *, job_id: int, worker: str) -> Job | None:
    """Refresh the heartbeat of a job this worker runs; returns the row (to read
    ``cancel_requested``), or None when the job is no longer this worker's running job."""
    if not update_job(session, job_id=job_id, expect_status=("running",), expect_worker=worker,
                      heartbeat_at=utcnow()):
        return None
    row = session.get(Job, job_id)
    if row is not None:
        session.refresh(row)
    return row


def stale_running(session: Session, *, before: datetime) -> Sequence[Job]:
    """Running jobs whose heartbeat is older than ``before`` (their worker is gone)."""
    return session.exec(select(Job).where(Job.status == "running")
                        .where(col(Job.heartbeat_at) < before).order_by(col(Job.id))).all()


def mark_stale(session: Session, *, job_id: int, before: datetime, status: str, error: str
               ) -> bool:
    """Finish a running job whose heartbeat is still older than ``before`` (checked in the same
    UPDATE, so a worker that just sent a heartbeat keeps its job)."""
    result = session.execute(
        update(Job).where(col(Job.id) == job_id).where(col(Job.status) == "running")
        .where(col(Job.heartbeat_at) < before)
        .values(status=status, error=error, finished_at=utcnow(), updated_at=utcnow()))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def add_metrics(session: Session, *, job_id: int, attempt: int,
                points: Sequence[tuple[int, int, float, dict[str, float]]],
                new_offset: int) -> None:
    """Store metric points ``(line_offset, step, wall_time, metrics)`` and advance the job's
    read offset in the same transaction (so a point is stored exactly once)."""
    for line_offset, step, wall_time, metrics in points:
        session.add(JobMetric(job_id=job_id, attempt=attempt, step=step, wall_time=wall_time,
                              line_offset=line_offset, metrics=metrics))
    session.execute(update(Job).where(col(Job.id) == job_id)
                    .values(metrics_offset=new_offset))


def job_metrics(session: Session, *, job_id: int, after_id: int = 0) -> Sequence[JobMetric]:
    return session.exec(select(JobMetric).where(JobMetric.job_id == job_id)
                        .where(col(JobMetric.id) > after_id)
                        .order_by(col(JobMetric.id))).all()


def last_step(session: Session, *, job_id: int, attempt: int | None = None) -> int | None:
    query = select(func.max(JobMetric.step)).where(JobMetric.job_id == job_id)
    if attempt is not None:
        query = query.where(JobMetric.attempt == attempt)
    value = session.exec(query).one()
    return None if value is None else int(value)
