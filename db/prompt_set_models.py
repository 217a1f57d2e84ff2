"""Prompt sets (issue 13 point 6; migration 0009): imported lists of prompts, referenced by id
from job configs and the Playground. Like pair datasets they are stored rows, never paths."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text, UniqueConstraint
from sqlalchemy.types import JSON
from sqlmodel import Field, SQLModel

from db.base_models import utcnow


class PromptSetRow(SQLModel, table=True):
    __tablename__ = "prompt_set"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200, unique=True, index=True)
    source_format: str = Field(max_length=40)  # builtin | prompts_jsonl | hh_rlhf | text
    source_name: str = Field(max_length=300)
    source_sha256: str = Field(max_length=64)
    prompt_count: int = 0
    builtin: bool = False
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)


class PromptSetItem(SQLModel, table=True):
    __tablename__ = "prompt_set_item"
    __table_args__ = (UniqueConstraint("prompt_set_id", "position",
                                       name="uq_prompt_set_item_position"),)

    id: int | None = Field(default=None, primary_key=True)
    prompt_set_id: int = Field(foreign_key="prompt_set.id", index=True)
    position: int
    prompt: str = Field(sa_column=Column(Text, nullable=False))
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
