"""What the tables of several domains share: UTC timestamps, a prompt with two responses, and
the progress of a resumable background run.

Naming rule (docs/architecture.md): the tables of one domain live in ``db/<domain>_models.py``;
table names are singular snake_case; only this module holds shared columns (as mixins without a
table). Mixins declare columns with ``sa_type`` (not ``sa_column``): a Column object cannot be
shared by two tables.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import JSON, Text
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    """Aware UTC with microseconds (SQLModel stores aware datetimes and reads them back as UTC)."""
    return datetime.now(UTC)


class PromptPair(SQLModel):
    """A prompt and two responses to it, as a judge or a labeller compares them."""

    prompt: str = Field(sa_type=Text, nullable=False)
    response_a: str = Field(sa_type=Text, nullable=False)
    response_b: str = Field(sa_type=Text, nullable=False)


class RunProgress(SQLModel):
    """A background run that is created, then judged in committed chunks and resumed where it
    stopped: its config, status (``queued`` … ``done``/``failed``/``cancelled``), progress
    counters, error, and who started it when."""

    config: dict[str, object] = Field(default_factory=dict, sa_type=JSON, nullable=False)
    status: str = Field(default="queued", max_length=20, index=True)
    done_count: int = 0
    total_count: int = 0
    error: str = Field(default="", sa_type=Text, nullable=False)
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
