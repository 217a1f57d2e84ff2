"""Training jobs, their metric points and artifacts (issue 5; migration 0004).

A job row is the queue entry and the record of the run: its kind and normalised config, who
launched it, which worker runs it (host, pid and process group of the stage process), the
heartbeat that tells a live worker from a dead one, and how it ended. The files of the run live
in ``artifact_dir`` (see docs/training-contract.md).
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

import db.constitution_models  # noqa: F401  (registers its tables)
from db.base_models import utcnow

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled", "interrupted")
ACTIVE_STATUSES = ("queued", "running")
FINISHED_STATUSES = ("succeeded", "failed", "cancelled", "interrupted")


class Job(SQLModel, table=True):
    __tablename__ = "job"
    __table_args__ = (Index("ix_job_status_id", "status", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40, index=True)
    name: str = Field(default="", max_length=200)
    config: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    status: str = Field(default="queued", max_length=20)
    constitution_version_id: int | None = Field(
        default=None, foreign_key="constitution_version.id", index=True)
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    started_at: datetime | None = None
    finished_at: datetime | None = None
    heartbeat_at: datetime | None = None
    worker: str = Field(default="", max_length=200)  # "host:pid" of the worker running it
    pid: int | None = None  # of the stage's process-group leader
    pgid: int | None = None
    exit_code: int | None = None
    error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    artifact_dir: str = Field(default="", max_length=1000)
    attempt: int = 1
    cancel_requested: bool = False
    metrics_offset: int = 0  # bytes of metrics.jsonl already stored as job_metric rows
    result: dict[str, object] | None = Field(default=None, sa_column=Column(JSON))


class _NewJobRequired(TypedDict):
    kind: str
    created_by: str


class NewJob(_NewJobRequired, total=False):
    """The columns ``job_repo.create_job`` takes (``kind`` and ``created_by`` are required;
    the rest have defaults)."""

    name: str
    config: dict[str, object]
    status: str
    constitution_version_id: int | None
    artifact_dir: str
    attempt: int


class JobChanges(TypedDict, total=False):
    """The columns ``job_repo.update_job`` may set (``updated_at`` is set with them)."""

    kind: str
    name: str
    config: dict[str, object]
    status: str
    constitution_version_id: int | None
    started_at: datetime | None
    finished_at: datetime | None
    heartbeat_at: datetime | None
    worker: str
    pid: int | None
    pgid: int | None
    exit_code: int | None
    error: str
    artifact_dir: str
    attempt: int
    cancel_requested: bool
    metrics_offset: int
    result: dict[str, object] | None


class JobMetric(SQLModel, table=True):
    """One line of a job's metrics.jsonl: ``metrics`` holds the metrics of that step (loss,
    reward, kl, learning_rate, samples_per_second, ...)."""

    __tablename__ = "job_metric"
    __table_args__ = (
        Index("ix_job_metric_job_step", "job_id", "step"),
        UniqueConstraint("job_id", "attempt", "line_offset", name="uq_job_metric_offset"),
    )

    id: int | None = Field(default=None, primary_key=True)
    job_id: int = Field(foreign_key="job.id")
    attempt: int = 1
    step: int
    wall_time: float  # unix seconds, as the stage wrote it
    line_offset: int  # byte offset of the line in metrics.jsonl (makes re-reading idempotent)
    metrics: dict[str, float] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
