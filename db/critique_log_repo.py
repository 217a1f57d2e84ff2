"""Keyword-only repository functions for the append-only critique log.

A batch of records whose prompts begin with the same long text (the few-shot examples in front
of every question of an agreement run or a data stage) stores that text once, in
``prompt_prefix``, and each record only the rest (``shared_prefix``: at least
``MIN_PREFIX_CHARS``, cut at a line break, only across ``MIN_PREFIX_CHAINS`` or more chains so
that one item's own conversation never becomes a prefix). Every reader here gives the whole
prompt back; the record hash is over the whole prompt, as before. The search index covers the
part after the prefix (docs/architecture.md, "Shared prompt prefixes").
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields
from typing import Any

from sqlalchemy import func, insert
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, select

from db.audit_chain import canonical_json
from db.base_models import utcnow
from db.bulk import give_ids, insert_rows
from db.critique_log_models import CritiqueLogRecord, PromptPrefix
from db.paging import row_batches
from db.record_seal import note_inserted, stored_form

MIN_PREFIX_CHARS = 512
MIN_PREFIX_CHAINS = 4
LOG: Any = CritiqueLogRecord.__table__  # type: ignore[attr-defined]
PREFIX: Any = PromptPrefix.__table__  # type: ignore[attr-defined]


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
_PARAMS_MARK = "\x00params"  # stands in for the params while a record's JSON is encoded
_PARAMS_MARK_JSON = '"params":"\\u0000params"'


def _columns(record: NewCritiqueRecord) -> dict[str, Any]:
    return {name: getattr(record, name) for name in HASHED_FIELDS}


def record_hash(record: CritiqueLogRecord) -> str:
    """sha256 over the row's content and time (not its id, which is assigned on insert)."""
    fields: dict[str, Any] = {name: getattr(record, name) for name in HASHED_FIELDS}
    fields["created_at"] = record.created_at.isoformat(timespec="microseconds")
    return hashlib.sha256(canonical_json(fields).encode("utf-8")).hexdigest()


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
    each hashed as ``insert_record`` hashes it (over the values as they read back). On SQLite
    each row's seal hash is composed from its record hash's JSON (``_row_json``) instead of
    encoding the row a second time."""
    if not rows:
        return []
    now = utcnow()
    stamp = now.isoformat(timespec="microseconds")
    conn = session.connection()
    prefix = shared_prefix([r.prompt_sent for r in rows], {r.chain_id for r in rows})
    prefix_id = _prefix_id(conn, prefix) if prefix else None
    cut = len(prefix)
    values = []
    texts = []
    params_json: dict[int, str] = {}  # a batch's records share one params dict: encoded once
    for new in rows:
        row = stored_form(LOG, _columns(new))  # hashed as it will read back (0 -> 0.0)
        text = _hash_json(row, stamp, params_json)
        row["created_at"] = now
        row["record_hash"] = hashlib.sha256(text.encode("utf-8")).hexdigest()
        if cut:
            row["prompt_sent"] = new.prompt_sent[cut:]
        row["prompt_prefix_id"] = prefix_id
        values.append(row)
        texts.append(text)
    if conn.dialect.name == "sqlite":
        ids = give_ids(conn, LOG, values)
        insert_rows(conn, LOG, values)
        skip = len(canonical_json(prefix)) - 2  # the prefix's escaped text, without quotes
        note_inserted(conn, LOG.name, values,  # sealed at commit without a read-back
                      [hashlib.sha256(_row_json(text, row, skip).encode("utf-8")).hexdigest()
                       for text, row in zip(texts, values, strict=True)])
        return ids
    result = conn.execute(
        insert(LOG).returning(LOG.c.id, sort_by_parameter_order=True), values)
    return [int(r[0]) for r in result]


def _hash_json(row: dict[str, Any], stamp: str, params_json: dict[int, str]) -> str:
    """``canonical_json`` of a record's hashed fields and time, with its params encoded once
    per dict object (``params_json``, by id: a batch's records share the run's params)."""
    text = canonical_json({**row, "created_at": stamp, "params": _PARAMS_MARK})
    encoded = params_json.get(id(row["params"]))
    if encoded is None:
        encoded = params_json[id(row["params"])] = canonical_json(row["params"])
    # the first match is the top-level key: every key before it holds a string or a number,
    # and an escaped string holds no bare quote
    return text.replace(_PARAMS_MARK_JSON, '"params":' + encoded, 1)


def _row_json(hashed: str, row: dict[str, Any], skip: int) -> str:
    """The canonical JSON of the stored row (what its seal hashes), made from ``hashed``, the
    canonical JSON its record hash was taken over: the same sorted keys plus ``id``,
    ``prompt_prefix_id`` and ``record_hash``, and the prompt without its first ``skip``
    escaped characters (the stored prefix; escaping is per character, so the stored rest's
    escape is the tail of the whole prompt's). Key searches cannot hit text inside a value:
    an escaped string holds no bare quote, every value before "kind" is a string or a number,
    and only numbers follow the prompt. tests/db/test_critique_log_repo.py checks it equals
    ``canonical_json`` of the row for odd text."""
    kind = hashed.index(',"kind":')
    sent = hashed.rindex(',"prompt_sent":"')
    after = hashed.rindex(',"round":')
    prompt = hashed[sent + 16:after]
    prefix_id = "null" if row["prompt_prefix_id"] is None else str(int(row["prompt_prefix_id"]))
    return "".join((hashed[:kind], ',"id":', str(int(row["id"])), hashed[kind:sent],
                    ',"prompt_prefix_id":', prefix_id, ',"prompt_sent":"', prompt[skip:],
                    ',"record_hash":"', row["record_hash"], '"', hashed[after:]))


def shared_prefix(prompts: Sequence[str], chains: set[str]) -> str:
    """The text every prompt begins with, up to and including its last line break, when it is
    at least MIN_PREFIX_CHARS long and the prompts belong to MIN_PREFIX_CHAINS or more chains;
    otherwise ''."""
    if len(chains) < MIN_PREFIX_CHAINS or len(prompts) < 2:
        return ""
    first, last = min(prompts), max(prompts)  # the common prefix of all is theirs
    lo, hi = 0, min(len(first), len(last))
    while lo < hi:  # longest n with first[:n] == last[:n] (C-speed compares, log steps)
        mid = (lo + hi + 1) // 2
        if last.startswith(first[:mid]):
            lo = mid
        else:
            hi = mid - 1
    cut = first.rfind("\n", 0, lo) + 1
    return first[:cut] if cut >= MIN_PREFIX_CHARS else ""


def _prefix_id(conn: Any, text: str) -> int:
    """The id of the stored prefix ``text``, storing it first if it is new."""
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()
    found = conn.execute(select(PREFIX.c.id).where(PREFIX.c.sha256 == digest)).scalar()
    if found is None:
        dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
        conn.execute(dialect.insert(PREFIX).values(sha256=digest, text=text, created_at=utcnow())
                     .on_conflict_do_nothing(index_elements=["sha256"]))
        found = conn.execute(select(PREFIX.c.id).where(PREFIX.c.sha256 == digest)).scalar_one()
    return int(found)


def prefix_texts(session: Session, ids: set[int]) -> dict[int, str]:
    """{prefix id: text} of the given prefixes."""
    if not ids:
        return {}
    rows = session.execute(select(PREFIX.c.id, PREFIX.c.text).where(PREFIX.c.id.in_(ids)))
    return {int(i): str(t) for i, t in rows}


def whole_records(session: Session, rows: Sequence[Any],
                  known: dict[int, str] | None = None) -> list[CritiqueLogRecord]:
    """Stored rows (mappings of every column) as detached records holding their whole prompt
    (prefix + the rest). ``known``: prefix texts already read (updated in place)."""
    texts = known if known is not None else {}
    missing = {int(r["prompt_prefix_id"]) for r in rows
               if r["prompt_prefix_id"] is not None} - texts.keys()
    texts.update(prefix_texts(session, missing))
    out = []
    for r in rows:
        data = dict(r)
        if data["prompt_prefix_id"] is not None:
            data["prompt_sent"] = texts[int(data["prompt_prefix_id"])] + data["prompt_sent"]
        out.append(CritiqueLogRecord.model_validate(data))
    return out


def _read(session: Session, stmt: Any) -> list[CritiqueLogRecord]:
    return whole_records(session, session.execute(stmt).mappings().all())


def get_record(session: Session, *, record_id: int) -> CritiqueLogRecord | None:
    found = _read(session, select(LOG).where(LOG.c.id == record_id))
    return found[0] if found else None


def records_by_ids(session: Session, *, ids: Sequence[int]) -> dict[int, CritiqueLogRecord]:
    return {int(r.id or 0): r for r in _read(session, select(LOG).where(LOG.c.id.in_(ids)))}


def chain_records(session: Session, *, chain_id: str) -> Sequence[CritiqueLogRecord]:
    return _read(session, select(LOG).where(LOG.c.chain_id == chain_id).order_by(LOG.c.id))


def recent_records(session: Session, *, limit: int = 50, offset: int = 0
                   ) -> Sequence[CritiqueLogRecord]:
    return _read(session, select(LOG).order_by(LOG.c.id.desc()).offset(offset).limit(limit))


def count_records(session: Session) -> int:
    return session.exec(select(func.count()).select_from(CritiqueLogRecord)).one()


def iter_records(session: Session, batch: int = 2000) -> Iterator[CritiqueLogRecord]:
    """Every record, whole, in id order (keyset paging: constant memory)."""
    known: dict[int, str] = {}
    for rows in row_batches(session, LOG, batch=batch):
        yield from whole_records(session, rows, known)
