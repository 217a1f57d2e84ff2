"""Settings kept in the store (migration 0012): one JSON value per key.

The studio keeps its engine settings here (key ``engine``), so an engine chosen in the Settings
tab survives a restart. Each change is also an audit event (the engines service writes both in
one transaction); secrets (API keys) are never stored.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, Column
from sqlmodel import Field, SQLModel

from db.base_models import utcnow


class StoredSetting(SQLModel, table=True):
    __tablename__ = "stored_setting"

    key: str = Field(primary_key=True, max_length=100)
    value: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    updated_by: str = Field(max_length=120)
    updated_at: datetime = Field(default_factory=utcnow)
