"""Keyword-only repository functions for the append-only critique log."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import Session, col, select

from db.base_models import utcnow
from db.bulk import give_ids, insert_rows
from db.critique_log_models import CritiqueLogRecord
from db.paging import iter_by_id
from db.record_seal import note_inserted


@dataclass(frozen=True)
class NewCritiqueRecord:
    """The columns a writer gives a new critique-log record, all of them hashed (the id, time
    and hash are set on insert)."""

    kind: str
    chain_id: str
    parent_id: int | None
    round: int | None
    constitution_version_id: int | None
    principle_key: str | None
    engine_kind: str
    model: str
    params: dict[str, object]
    seed: int | None
    prompt_sent: str
    output: str
    probabilities: dict[str, object] | None
    latency_s: float
    actor: str


HASHED_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(NewCritiqueRecord))


def _columns(record: NewCritiqueRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in HASHED_FIELDS}


def record_hash(record: CritiqueLogRecord) -> str:
    """sha256 over the row's content and time (not its id, which is assigned on insert)."""
    fields: dict[str, Any] = {name: getattr(record, name) for name in HASHED_FIELDS}
    fields["created_at"] = record.created_at.isoformat(timespec="microseconds")
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def insert_record(session: Session, new: NewCritiqueRecord) -> CritiqueLogRecord:
    """Insert one record."""
    record = CritiqueLogRecord(created_at=utcnow(), record_hash="", **_columns(new))
    record.record_hash = record_hash(record)
    session.add(record)
    session.flush()
    return record


def insert_records(session: Session, rows: Sequence[NewCritiqueRecord]) -> list[int]:
    """Insert many records in one statement (fields as ``insert_record``); their ids, in order.

    Plain dicts through SQLAlchemy Core (no ORM objects, one multi-row INSERT ... RETURNING),
    each hashed exactly as ``insert_record`` hashes it."""
    if not rows:
        return []
    now = utcnow()
    values = []
    for new in rows:
        row = {**_columns(new), "created_at": now}
        row["record_hash"] = _hash_fields(row)
        values.append(row)
    table: Any = CritiqueLogRecord.__table__  # type: ignore[attr-defined]
    conn = session.connection()
    if conn.dialect.name == "sqlite":
        ids = give_ids(conn, table, values)
        insert_rows(conn, table, values)
        note_inserted(conn, table.name, values)  # sealed at commit without a read-back
        return ids
    result = conn.execute(
        insert(table).returning(table.c.id, sort_by_parameter_order=True), values)
    return [int(r[0]) for r in result]


def _hash_fields(row: dict[str, Any]) -> str:
    fields = {name: row.get(name) for name in HASHED_FIELDS}
    fields["created_at"] = row["created_at"].isoformat(timespec="microseconds")
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def get_record(session: Session, *, record_id: int) -> CritiqueLogRecord | None:
    return session.get(CritiqueLogRecord, record_id)


def chain_records(session: Session, *, chain_id: str) -> Sequence[CritiqueLogRecord]:
    return session.exec(
        select(CritiqueLogRecord).where(CritiqueLogRecord.chain_id == chain_id)
        .order_by(col(CritiqueLogRecord.id))
    ).all()


def recent_records(session: Session, *, limit: int = 50, offset: int = 0
                   ) -> Sequence[CritiqueLogRecord]:
    return session.exec(
        select(CritiqueLogRecord).order_by(col(CritiqueLogRecord.id).desc())
        .offset(offset).limit(limit)
    ).all()


def count_records(session: Session) -> int:
    return session.exec(select(func.count()).select_from(CritiqueLogRecord)).one()


def iter_records(session: Session, batch: int = 2000) -> Iterator[CritiqueLogRecord]:
    return iter_by_id(session, CritiqueLogRecord, batch)
