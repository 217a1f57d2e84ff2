"""Constitution CI: aliases of versions (production, staging, ...) and golden cases, the
pairs a constitution must keep judging the expected way."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Text
from sqlmodel import Field, SQLModel

import db.constitution_models  # noqa: F401  (registers its tables)
from db.base_models import PromptPair, utcnow


class GoldenCase(PromptPair, table=True):
    """A pair pinned to a constitution with the verdict it should get (a regression case)."""

    __tablename__ = "golden_case"

    id: int | None = Field(default=None, primary_key=True)
    constitution_id: int = Field(foreign_key="constitution.id", index=True)
    expected: str = Field(max_length=1)  # "A" or "B"
    note: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)


class ConstitutionAlias(SQLModel, table=True):
    """A named pointer (``production``, ``staging``) to a constitution version. Append-only:
    moving an alias adds a row; the newest row per (constitution, name) is where it points
    (``version_id`` None: the alias was removed)."""

    __tablename__ = "constitution_alias"

    id: int | None = Field(default=None, primary_key=True)
    constitution_id: int = Field(foreign_key="constitution.id", index=True)
    name: str = Field(max_length=60)
    version_id: int | None = Field(default=None, foreign_key="constitution_version.id")
    set_by: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)
