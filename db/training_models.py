"""Datasets made by training stages: SL-CAI samples linked to the critiques and principles
that produced them, and AI-labelled preference pairs linked to their verdict records
(issue 5; migration 0007).

A ``training_dataset`` row is made by one job (``job_id``) under one constitution version; its
samples are append-only (triggers refuse UPDATE and DELETE). A restarted job appends the
samples it has not stored yet, so the (dataset, position) pair is unique.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

import db.constitution_models
import db.critique_log_models
import db.job_models  # noqa: F401  (registers table "job", which job_id references)
from db.base_models import PromptPair, utcnow

DATASET_KINDS = ("sl_cai", "preference")


class TrainingDataset(SQLModel, table=True):
    __tablename__ = "training_dataset"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=20, index=True)  # sl_cai | preference
    name: str = Field(max_length=200)
    job_id: int | None = Field(default=None, foreign_key="job.id", index=True)
    constitution_version_id: int | None = Field(
        default=None, foreign_key="constitution_version.id", index=True)
    model: str = Field(default="", max_length=300)  # the policy / engine that produced it
    config: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    source: str = Field(default="", max_length=500)  # prompt set path or "default"
    source_sha256: str = Field(default="", max_length=64)
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)


class SlCaiSample(SQLModel, table=True):
    """(prompt, final revision) with links to every step of its critique→revision chain:
    ``record_ids`` lists the critique-log ids (response, then critique and revision of each
    round) and ``principle_keys`` the principle of each round."""

    __tablename__ = "sl_cai_sample"
    __table_args__ = (UniqueConstraint("dataset_id", "position", name="uq_sl_cai_position"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="training_dataset.id", index=True)
    position: int  # index of the prompt in the prompt set
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    response: str = Field(sa_column=Column(Text, nullable=False))
    revision: str = Field(sa_column=Column(Text, nullable=False))
    chain_id: str = Field(max_length=40, index=True)
    response_record_id: int | None = Field(default=None, foreign_key="critique_log.id")
    final_record_id: int | None = Field(default=None, foreign_key="critique_log.id")
    record_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    principle_keys: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    content_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)


class AiPairSample(PromptPair, table=True):
    """Two sampled responses to one prompt and the CAI labeller's soft label ``p_a`` (the
    probability that A is better), linked to the verdict records (one per principle and
    order) in the critique log."""

    __tablename__ = "ai_pair_sample"
    __table_args__ = (UniqueConstraint("dataset_id", "position", name="uq_ai_pair_position"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(foreign_key="training_dataset.id", index=True)
    position: int
    p_a: float
    verdict_chain_id: str = Field(max_length=40, index=True)
    response_record_ids: list[int] = Field(default_factory=list,
                                           sa_column=Column(JSON, nullable=False))
    verdict_record_ids: list[int] = Field(default_factory=list,
                                          sa_column=Column(JSON, nullable=False))
    principle_keys: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    variants: list[dict[str, object]] = Field(default_factory=list,
                                             sa_column=Column(JSON, nullable=False))
    content_hash: str = Field(max_length=64)
    created_at: datetime = Field(default_factory=utcnow)
