"""The critique log: every model call of the CAI core (append-only, hashed)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

import db.constitution_models  # noqa: F401  (registers its tables)
from db.base_models import utcnow


class PromptPrefix(SQLModel, table=True):
    """Text that many critique-log prompts begin with (the few-shot examples in front of every
    question of a run), stored once. Append-only; ``sha256`` is the hash of ``text``."""

    __tablename__ = "prompt_prefix"

    id: int | None = Field(default=None, primary_key=True)
    sha256: str = Field(max_length=64, unique=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    created_at: datetime = Field(default_factory=utcnow)


class CritiqueLogRecord(SQLModel, table=True):
    """One model call of the CAI core: a response, critique, revision, CoT or verdict.

    Append-only. ``record_hash`` is sha256 of the row's canonical JSON (see critique_log_repo),
    so an edited row can be detected. ``chain_id`` groups the steps of one critique→revision
    chain or one A/B verdict; ``parent_id`` points at the step it continued from.

    ``prompt_sent`` as stored is the prompt after its ``prompt_prefix`` (when
    ``prompt_prefix_id`` is set): the readers in critique_log_repo give the whole prompt back,
    and the record hash is over the whole prompt.
    """

    __tablename__ = "critique_log"
    __table_args__ = (Index("ix_critique_log_chain", "chain_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, index=True)
    kind: str = Field(max_length=20, index=True)
    chain_id: str = Field(max_length=40)
    parent_id: int | None = Field(default=None, foreign_key="critique_log.id")
    round: int | None = None
    constitution_version_id: int | None = Field(
        default=None, foreign_key="constitution_version.id", index=True)
    principle_key: str | None = Field(default=None, max_length=64, index=True)
    engine_kind: str = Field(max_length=40)
    model: str = Field(max_length=300)
    params: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    seed: int | None = None
    prompt_sent: str = Field(sa_column=Column(Text, nullable=False))
    # references prompt_prefix.id (append-only, never deleted); no FOREIGN KEY clause, so
    # that SQLite can add and drop the column in place on its largest table
    prompt_prefix_id: int | None = None
    output: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    probabilities: dict[str, object] | None = Field(default=None, sa_column=Column(JSON))
    latency_s: float = 0.0
    actor: str = Field(max_length=120)
    record_hash: str = Field(max_length=64)
