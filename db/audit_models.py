"""The audit trail: the hash-chained event log (``audit_event``), and flags, comments
and seals (issue 6; migration 0005).

All four tables are append-only (triggers refuse UPDATE and DELETE). A flag is cleared by
appending an ``unflag`` row, so a record's flag state is its latest flag row. Comments never
change the record they are about. Seals hold the sha256 of each stored append-only row and are
hash-chained, so an altered row, a forged row hash or a deleted row is named by
``cstudio audit verify``. The full-text index (``critique_fts``) is hand-written SQL in the
migration.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

import db.critique_log_models  # noqa: F401  (registers its tables)
from db.base_models import utcnow

FLAG = "flag"
UNFLAG = "unflag"


class AuditEvent(SQLModel, table=True):
    """Append-only; ``hash`` = sha256(prev_hash, canonical JSON of the row) (see audit_chain)."""

    __tablename__ = "audit_event"
    __table_args__ = (Index("ix_audit_event_entity", "entity_type", "entity_id"),)

    id: int = Field(primary_key=True)
    created_at: datetime = Field(default_factory=utcnow)
    actor: str = Field(max_length=120)
    action: str = Field(max_length=80, index=True)
    entity_type: str = Field(max_length=80)
    entity_id: str = Field(max_length=120)
    payload: str = Field(sa_column=Column(Text, nullable=False))
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)


class AuditFlag(SQLModel, table=True):
    __tablename__ = "audit_flag"
    __table_args__ = (Index("ix_audit_flag_record", "record_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="critique_log.id")
    action: str = Field(max_length=10)  # "flag" | "unflag"
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    actor: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)


class AuditComment(SQLModel, table=True):
    __tablename__ = "audit_comment"
    __table_args__ = (Index("ix_audit_comment_record", "record_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    record_id: int = Field(foreign_key="critique_log.id")
    body: str = Field(sa_column=Column(Text, nullable=False))
    actor: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)


class RecordSeal(SQLModel, table=True):
    """sha256 of one stored row (``row_hash``), chained: ``hash`` = sha256(prev_hash, table,
    row id, row hash). One seal per (table, row)."""

    __tablename__ = "record_seal"
    __table_args__ = (UniqueConstraint("table_name", "row_id", name="uq_record_seal_row"),)

    id: int | None = Field(default=None, primary_key=True)
    table_name: str = Field(max_length=40)
    row_id: int
    row_hash: str = Field(max_length=64)
    prev_hash: str = Field(max_length=64)
    hash: str = Field(max_length=64, unique=True)
    created_at: datetime = Field(default_factory=utcnow)
