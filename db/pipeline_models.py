"""Pipelines of chained training jobs (issue 17; migration 0017).

A ``pipeline`` row is one launch of the paper's recipe: its stages are ordinary ``job`` rows
(listed in ``pipeline_stage`` in order) and ``job_dependency`` says which jobs a job needs; the
worker claims a job only when every job it needs has succeeded. The final comparison of the
trained policy against the base and the SFT policy is a ``comparison`` row, linked here once
the last job succeeded.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

import db.comparison_models
import db.constitution_models
import db.job_models  # noqa: F401  (registers its tables)
from db.base_models import utcnow


class Pipeline(SQLModel, table=True):
    __tablename__ = "pipeline"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(default="", max_length=200)
    constitution_version_id: int = Field(foreign_key="constitution_version.id", index=True)
    config: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    comparison_id: int | None = Field(default=None, foreign_key="comparison.id")
    error: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)


class PipelineStage(SQLModel, table=True):
    """One job of a pipeline, in order (``stage`` is the job kind)."""

    __tablename__ = "pipeline_stage"
    __table_args__ = (UniqueConstraint("pipeline_id", "position", name="uq_pipeline_stage"),)

    id: int | None = Field(default=None, primary_key=True)
    pipeline_id: int = Field(foreign_key="pipeline.id", index=True)
    position: int
    stage: str = Field(max_length=40)
    job_id: int = Field(foreign_key="job.id", unique=True)


class JobDependency(SQLModel, table=True):
    """``job_id`` starts only when ``depends_on_id`` has succeeded."""

    __tablename__ = "job_dependency"
    __table_args__ = (Index("ix_job_dependency_depends_on", "depends_on_id"),)

    job_id: int = Field(foreign_key="job.id", primary_key=True)
    depends_on_id: int = Field(foreign_key="job.id", primary_key=True)
