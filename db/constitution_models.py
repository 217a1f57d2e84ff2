"""Constitutions and their immutable versions: principles and few-shot examples.

Versions, principles and few-shot examples are never updated or deleted once written (the
migrations add triggers that refuse it on SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from db.base_models import utcnow


class Constitution(SQLModel, table=True):
    __tablename__ = "constitution"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=120, unique=True, index=True)
    description: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)


class ConstitutionVersion(SQLModel, table=True):
    """One immutable saved state. The head is the version with the highest ``number``; the
    unique (constitution, number) pair makes a save on a stale head fail instead of forking."""

    __tablename__ = "constitution_version"
    __table_args__ = (UniqueConstraint("constitution_id", "number", name="uq_version_number"),)

    id: int | None = Field(default=None, primary_key=True)
    constitution_id: int = Field(foreign_key="constitution.id", index=True)
    number: int
    parent_id: int | None = Field(default=None, foreign_key="constitution_version.id")
    content_hash: str = Field(max_length=64, index=True)
    author: str = Field(max_length=120)
    message: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_at: datetime = Field(default_factory=utcnow)


class PrincipleRow(SQLModel, table=True):
    __tablename__ = "principle"
    __table_args__ = (
        UniqueConstraint("version_id", "position", name="uq_principle_position"),
        UniqueConstraint("version_id", "key", name="uq_principle_key"),
    )

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="constitution_version.id", index=True)
    position: int
    key: str = Field(max_length=64, index=True)
    title: str = Field(max_length=200)
    critique_request: str = Field(sa_column=Column(Text, nullable=False))
    revision_request: str = Field(sa_column=Column(Text, nullable=False))
    choice_instruction: str = Field(sa_column=Column(Text, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    enabled: bool = True


class FewShotRow(SQLModel, table=True):
    __tablename__ = "few_shot_example"
    __table_args__ = (UniqueConstraint("version_id", "position", name="uq_few_shot_position"),)

    id: int | None = Field(default=None, primary_key=True)
    version_id: int = Field(foreign_key="constitution_version.id", index=True)
    position: int
    kind: str = Field(max_length=40)
    data: dict[str, object] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
