"""Seals: the sha256 of every stored append-only row, in a hash chain of their own.

Rows of the append-only tables are sealed after they are written (``seal_new_rows``, run at
start-up, before an evidence export, by ``cstudio audit verify`` and after flags/comments).
``verify_seals`` then names the first row whose content no longer matches its seal, a sealed
row that is gone, a row slipped in below the sealed range, or a seal whose chain link breaks
(a forged seal). A row altered before its first seal is only caught by its own hash where the
table has one (critique log, version content hashes, the audit event chain).

A writer that inserts many rows with explicit ids (the critique log and verdicts of an
agreement run, on SQLite) hands their values to ``note_inserted``; sealing them then hashes
those values instead of reading every row back (a third of an agreement run's storing time).
The values are used only when they are exactly the rows to seal (contiguous ids from the last
seal to the table's end) and the first of them, read back, hashes the same; otherwise the rows
are read back as usual.
"""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, func, select, text
from sqlmodel import Session, SQLModel

import db.comparison_models  # (comparison responses and verdicts are sealed too)
import db.training_models  # noqa: F401  (registers the sample tables that are sealed too)
from db.audit_chain import GENESIS_HASH, canonical_json
from db.audit_models import RecordSeal
from db.base_models import utcnow
from db.bulk import insert_rows
from db.paging import row_batches

SEALED_TABLES: tuple[str, ...] = (
    "constitution_version", "principle", "few_shot_example", "critique_log", "pair_item",
    "verdict", "audit_flag", "audit_comment", "sl_cai_sample", "ai_pair_sample",
    "comparison_response", "comparison_verdict", "comparison_vote", "constitution_alias",
    "comparison_adjudication", "prompt_prefix",
)
_SEAL: Any = RecordSeal.__table__  # type: ignore[attr-defined]
_PG_SEAL_LOCK = 0x5EA1ED
KNOWN_ROWS = "cstudio_known_rows"  # Connection.info key: {table: [row values]} (see note_inserted)
TRACK_ROWS = "cstudio_track_rows"  # set by db.anchor at each transaction's start
log = logging.getLogger(__name__)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return value


def row_hash(row: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of every column of a row."""
    data = {k: _json_value(v) for k, v in row.items()}
    return hashlib.sha256(canonical_json(data).encode("utf-8")).hexdigest()


def seal_hash(prev_hash: str, table_name: str, row_id: int, hashed: str) -> str:
    data = f"{prev_hash}\n{table_name}\n{row_id}\n{hashed}".encode()
    return hashlib.sha256(data).hexdigest()


def _table(name: str) -> Table:
    return SQLModel.metadata.tables[name]


def _iter_rows(session: Session, table: Table, after: int, batch: int
               ) -> Iterator[dict[str, Any]]:
    for rows in row_batches(session, table, after=after, batch=batch):
        yield from (dict(r) for r in rows)


@dataclass
class _Noted:
    """Rows noted for one table: their values and, where the writer computed it, the hash of
    each row's stored form (``row_hash``), else None."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    hashes: list[str | None] = field(default_factory=list)


def note_inserted(conn: Connection, table_name: str, rows: Sequence[dict[str, Any]],
                  hashes: Sequence[str] | None = None) -> None:
    """Keep the values of rows just inserted (every column, ids included) for sealing them at
    commit without a read-back; ``hashes``: their ``row_hash`` when the writer has it already
    (the critique log composes it from the record hash's JSON). Only on SQLite and only inside
    a transaction that db.anchor tracks (it clears them when the next one begins), so nothing
    is kept otherwise."""
    if conn.dialect.name == "sqlite" and conn.info.get(TRACK_ROWS):
        noted = conn.info.setdefault(KNOWN_ROWS, {}).setdefault(table_name, _Noted())
        noted.rows.extend(rows)
        noted.hashes.extend(hashes if hashes is not None else [None] * len(rows))


def stored_form(table: Table, row: dict[str, Any]) -> dict[str, Any]:
    """A row's values as they read back: REAL, INTEGER and BOOLEAN columns give float, int and
    bool whatever Python type was inserted (JSON and text come back as written)."""
    out = dict(row)
    types = _scalar_types(table)
    for name, value in row.items():
        if value is None or isinstance(value, bool):
            continue
        python_type = types.get(name)
        if python_type is not None and type(value) is not python_type:
            out[name] = python_type(value)
    return out


@functools.cache
def _scalar_types(table: Table) -> dict[str, type]:
    """{column: float, int or bool} for the table's scalar columns."""
    found: dict[str, type] = {}
    for column in table.columns:
        try:
            python_type = column.type.python_type
        except NotImplementedError:
            continue
        if python_type in (float, int, bool):
            found[column.name] = python_type
    return found


def _known_rows(session: Session, table: Table, last: int
                ) -> list[tuple[int, str]] | None:
    """(id, row hash) of the noted rows of ``table`` when they are exactly its rows after
    ``last`` and the first and last of them read back hash as noted; else None (the caller
    reads the rows back)."""
    conn = session.connection()
    known: _Noted | None = conn.info.get(KNOWN_ROWS, {}).pop(table.name, None)
    if known is None or not known.rows:
        return None
    ids = [row.get("id") for row in known.rows]
    if ids != list(range(last + 1, last + 1 + len(ids))):
        return None
    if session.execute(select(func.max(table.c.id))).scalar() != ids[-1]:
        return None  # rows inserted some other way too
    hashes = [given or row_hash(stored_form(table, row))
              for row, given in zip(known.rows, known.hashes, strict=True)]
    for at in {0, len(ids) - 1}:  # spot checks: the noted values are what was stored
        stored = next(_iter_rows(session, table, int(ids[at]) - 1, 1), None)
        if stored is None or set(stored) != set(known.rows[at]) or row_hash(stored) != hashes[at]:
            log.warning("%s: noted row values differ from the stored row %s; reading rows back",
                        table.name, ids[at])
            return None
    return [(int(i), h) for i, h in zip(ids, hashes, strict=True)]


def _iter_seals(session: Session, table_name: str | None, batch: int) -> Iterator[RecordSeal]:
    key = _SEAL.c.id if table_name is None else _SEAL.c.row_id
    last = 0
    while True:
        stmt = select(RecordSeal).where(key > last)
        if table_name is not None:
            stmt = stmt.where(_SEAL.c.table_name == table_name)
        rows = session.execute(stmt.order_by(key).limit(batch)).scalars().all()
        if not rows:
            return
        yield from rows
        last = rows[-1].id if table_name is None else rows[-1].row_id
        session.expunge_all()


def head(session: Session) -> str:
    """The hash of the newest seal (64 zeros when nothing is sealed yet)."""
    last = session.execute(select(_SEAL.c.hash).order_by(_SEAL.c.id.desc()).limit(1)
                           ).scalar_one_or_none()
    return str(last) if last else GENESIS_HASH


def seal_new_rows(session: Session, *, tables: Sequence[str] = SEALED_TABLES,
                  batch: int = 2000) -> dict[str, int]:
    """Seal every row not sealed yet (inside the caller's write transaction); returns the
    number of new seals per table."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_SEAL_LOCK})
    prev = head(session)
    sealed_at = utcnow()  # one time for the seals of one commit (stored once per batch)
    counts: dict[str, int] = {}
    for name in tables:
        if name not in SQLModel.metadata.tables:
            continue
        last = session.execute(select(func.max(_SEAL.c.row_id)).where(
            _SEAL.c.table_name == name)).scalar_one_or_none() or 0
        pending: list[dict[str, Any]] = []
        n = 0
        table = _table(name)
        known = _known_rows(session, table, int(last))
        hashed_rows = known if known is not None else (
            (int(row["id"]), row_hash(row))
            for row in _iter_rows(session, table, int(last), batch))
        for row_id, hashed in hashed_rows:
            prev = seal_hash(prev, name, row_id, hashed)
            pending.append({"table_name": name, "row_id": row_id, "row_hash": hashed,
                            "prev_hash": "", "hash": prev, "created_at": sealed_at})
            if len(pending) >= batch:
                _flush(session, pending)
                n += len(pending)
                pending = []
        if pending:
            _flush(session, pending)
            n += len(pending)
        counts[name] = n
    return counts


def _flush(session: Session, pending: list[dict[str, Any]]) -> None:
    prev_of_first = head(session)
    for i, p in enumerate(pending):
        p["prev_hash"] = prev_of_first if i == 0 else pending[i - 1]["hash"]
    insert_rows(session.connection(), _SEAL, pending)  # Core rows, not ORM bulk objects


@dataclass
class SealReport:
    seals_checked: int = 0
    rows_checked: int = 0
    unsealed: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    head_hash: str = GENESIS_HASH


def verify_seals(session: Session, *, batch: int = 2000, max_problems: int = 20) -> SealReport:
    """Check the seal chain, then every sealed table against its seals (first problems first)."""
    report = SealReport()
    prev = GENESIS_HASH
    for seal in _iter_seals(session, None, batch):
        if seal.prev_hash != prev:
            report.problems.append(
                f"record_seal id {seal.id}: its prev_hash does not match the previous seal "
                "(a seal before it was changed, removed or inserted)")
            break
        if seal_hash(seal.prev_hash, seal.table_name, seal.row_id, seal.row_hash) != seal.hash:
            report.problems.append(f"record_seal id {seal.id}: its contents do not match its "
                                   "hash (the seal was altered)")
            break
        prev = seal.hash
        report.seals_checked += 1
    report.head_hash = prev
    for name in SEALED_TABLES:
        if name in SQLModel.metadata.tables:
            _verify_table(session, name, batch, report, max_problems)
    return report


def _verify_table(session: Session, name: str, batch: int, report: SealReport,
                  max_problems: int) -> None:
    seals = _iter_seals(session, name, batch)
    seal = next(seals, None)
    unsealed = 0
    for row in _iter_rows(session, _table(name), 0, batch):
        if len(report.problems) >= max_problems:
            return
        row_id = int(row["id"])
        while seal is not None and seal.row_id < row_id:
            report.problems.append(f"{name} id {seal.row_id}: the row was deleted after it was "
                                   f"sealed (record_seal id {seal.id})")
            seal = next(seals, None)
        report.rows_checked += 1
        if seal is None:
            unsealed += 1
            continue
        if seal.row_id > row_id:
            report.problems.append(f"{name} id {row_id}: the row has no seal but rows after it "
                                   "do (it was inserted afterwards)")
            continue
        if row_hash(row) != seal.row_hash:
            report.problems.append(f"{name} id {row_id}: its contents differ from its seal "
                                   f"(record_seal id {seal.id}); the row was altered")
        seal = next(seals, None)
    while seal is not None and len(report.problems) < max_problems:
        report.problems.append(f"{name} id {seal.row_id}: the row was deleted after it was "
                               f"sealed (record_seal id {seal.id})")
        seal = next(seals, None)
    if unsealed:
        report.unsealed[name] = unsealed
