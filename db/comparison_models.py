"""Comparisons of policies under a constitution (issue 16; migration 0014).

A ``comparison`` row fixes what is compared when it is created: the policies (base model, job
outputs, server models), the prompts (with their tags) and the constitution version that
judges. Its status and progress counters change as it runs; its responses and verdicts are
append-only (triggers refuse UPDATE and DELETE) and sealed like the other evidence tables. At
most one response per (comparison, policy, prompt) and one verdict per (comparison, prompt,
pair of policies) exist, so a stopped run resumes with what is missing.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

import db.constitution_models
import db.critique_log_models  # noqa: F401  (registers its tables)
from db.base_models import RunProgress, utcnow


class Comparison(RunProgress, table=True):
    __tablename__ = "comparison"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    constitution_version_id: int = Field(foreign_key="constitution_version.id", index=True)
    # [{"ref": "base" | "job:3" | "server:<model>" | path, "label": str, "kind": str,
    #   "location": str, "job_id": int | None}]
    policies: list[dict[str, object]] = Field(default_factory=list,
                                              sa_column=Column(JSON, nullable=False))
    # [{"text": str, "tags": [str]}]
    prompts: list[dict[str, object]] = Field(default_factory=list,
                                             sa_column=Column(JSON, nullable=False))
    prompt_source: str = Field(default="", max_length=500)
    prompt_sha256: str = Field(default="", max_length=64)
    judge_kind: str = Field(default="", max_length=40)
    judge_model: str = Field(default="", max_length=300)


class ComparisonResponse(SQLModel, table=True):
    """One policy's response to one prompt, linked to its critique-log record."""

    __tablename__ = "comparison_response"
    __table_args__ = (UniqueConstraint("comparison_id", "policy_index", "prompt_index",
                                       name="uq_comparison_response"),)

    id: int | None = Field(default=None, primary_key=True)
    comparison_id: int = Field(foreign_key="comparison.id", index=True)
    policy_index: int
    prompt_index: int
    response: str = Field(sa_column=Column(Text, nullable=False))
    record_id: int | None = Field(default=None, foreign_key="critique_log.id")
    finish_reason: str = Field(default="stop", max_length=20)
    # reward model reference ("job:5") -> its score of this response
    reward_scores: dict[str, float] = Field(default_factory=dict,
                                            sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ComparisonVerdict(SQLModel, table=True):
    """The judge's soft label on one prompt's pair of policies (``p_a``: the probability that
    policy ``policy_a``'s response is better), with every variant (principle × order, CoT) and
    the critique-log records they were stored as."""

    __tablename__ = "comparison_verdict"
    __table_args__ = (UniqueConstraint("comparison_id", "prompt_index", "policy_a", "policy_b",
                                       name="uq_comparison_verdict"),)

    id: int | None = Field(default=None, primary_key=True)
    comparison_id: int = Field(foreign_key="comparison.id", index=True)
    prompt_index: int
    policy_a: int
    policy_b: int
    p_a: float
    chain_id: str = Field(max_length=40, index=True)
    per_principle: dict[str, float] = Field(default_factory=dict,
                                            sa_column=Column(JSON, nullable=False))
    variants: list[dict[str, object]] = Field(default_factory=list,
                                             sa_column=Column(JSON, nullable=False))
    record_ids: list[int] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class ComparisonVote(SQLModel, table=True):
    """A person's A / B / tie vote on one judged pair (``label``: 1 A better, 0 B, 0.5 tie).
    Append-only: a changed mind is a newer row; the newest vote per (pair, voter) counts."""

    __tablename__ = "comparison_vote"

    id: int | None = Field(default=None, primary_key=True)
    comparison_id: int = Field(foreign_key="comparison.id", index=True)
    verdict_id: int = Field(foreign_key="comparison_verdict.id", index=True)
    voter: str = Field(max_length=120)
    label: float
    created_at: datetime = Field(default_factory=utcnow)


class ComparisonAdjudication(SQLModel, table=True):
    """An editor's or admin's ruling on a compared pair whose voters disagreed (issue 16 point
    7, migration 0016): it becomes the pair's label in the votes dataset. Append-only: a new
    ruling is a newer row; the newest per pair counts."""

    __tablename__ = "comparison_adjudication"

    id: int | None = Field(default=None, primary_key=True)
    comparison_id: int = Field(foreign_key="comparison.id", index=True)
    verdict_id: int = Field(foreign_key="comparison_verdict.id", index=True)
    adjudicator: str = Field(max_length=120)
    label: float
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)
