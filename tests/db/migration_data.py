"""Seeding every table of whatever schema a database is at, and fingerprinting its contents.

Rows are generated from the reflected schema (column types, foreign keys, nullability), so a
new migration's tables are seeded without anyone writing a seed for them. A fingerprint is the
row count and a sha256 of the rows (in primary-key order) over a fixed set of columns, so
columns added by later migrations do not count as changes.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Connection,
    DateTime,
    Float,
    Integer,
    MetaData,
    Numeric,
    String,
    Table,
    select,
)

# derived tables kept by triggers (search index, page counts) are not seeded by hand
BOOKKEEPING = ("alembic_version", "sqlite_", "critique_fts", "verdict_count")
Fingerprint = dict[str, tuple[int, str]]


def data_tables(conn: Connection) -> list[Table]:
    """The reflected tables holding studio data, parents before children."""
    meta = MetaData()
    meta.reflect(conn)
    return [t for t in meta.sorted_tables if not t.name.startswith(BOOKKEEPING)]


def _value(table: Table, column: Any, i: int) -> Any:
    for fk in column.foreign_keys:
        if fk.column.table.name == table.name:  # a link to an earlier row of the same table
            return None if (column.nullable and i == 0) else max(i, 1)
        return i + 1  # parents are seeded first with ids 1..n
    kind = column.type
    if isinstance(kind, Boolean):
        return i % 2 == 0
    if isinstance(kind, Integer):
        return i
    if isinstance(kind, Float | Numeric):
        return i + 0.25
    if isinstance(kind, DateTime):
        moment = datetime(2026, 1, 2, 3, 4, 5, 600_000 + i, tzinfo=UTC)
        return moment if kind.timezone else moment.replace(tzinfo=None)
    if isinstance(kind, JSON):
        return {"i": i, "text": f"{table.name} ✓"}
    if isinstance(kind, String):
        text = f"{i}:{table.name}.{column.name} héllo ✓"
        return text[: kind.length] if kind.length else text
    raise AssertionError(f"no seed value for {table.name}.{column.name} of type {kind!r}; "
                         "teach tests/db/migration_data.py this type")


def seed_every_table(conn: Connection, rows: int = 3) -> dict[str, list[str]]:
    """Insert ``rows`` rows into every data table; returns each table's seeded columns."""
    seeded: dict[str, list[str]] = {}
    for table in data_tables(conn):
        pk = {c.name for c in table.primary_key.columns
              if isinstance(c.type, Integer) and len(table.primary_key.columns) == 1}
        columns = [c for c in table.columns if c.name not in pk]
        for i in range(rows):
            conn.execute(table.insert().values({c.name: _value(table, c, i) for c in columns}))
        seeded[table.name] = [c.name for c in table.columns]
    return seeded


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, str) and value[:1] in "[{":
        try:  # JSON kept as text by one dialect and parsed by another reads the same
            return json.loads(value)
        except ValueError:
            return value
    return value


def fingerprint(conn: Connection, columns: dict[str, list[str]]) -> Fingerprint:
    """Row count and content hash of each table, over the given columns."""
    meta = MetaData()
    meta.reflect(conn, only=list(columns))
    result: Fingerprint = {}
    for name, names in columns.items():
        table = meta.tables[name]
        order = list(table.primary_key.columns) or [table.c[n] for n in names]
        rows = conn.execute(select(*(table.c[n] for n in names)).order_by(*order)).all()
        body = json.dumps([[_plain(v) for v in row] for row in rows], sort_keys=True,
                          default=str, ensure_ascii=False)
        result[name] = (len(rows), hashlib.sha256(body.encode("utf-8")).hexdigest())
    return result
