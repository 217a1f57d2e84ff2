"""Searching the critique log: full-text (SQLite FTS5 / PostgreSQL tsvector) plus filters,
keyset-paginated on the record id, newest first (or oldest first for exports). Flags and
comments on records are in ``db/audit_annotations_repo.py``.

User query strings are never passed to the FTS engine as syntax: ``fts_terms`` splits them
into words and "quoted phrases" and the SQL layer quotes each one, so FTS operators, quotes
and SQL-injection strings are searched for as plain words (or match nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Integer,
    Select,
    bindparam,
    column,
    func,
    literal_column,
    select,
    table,
    text,
)
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session

from db.audit_models import FLAG, AuditFlag
from db.constitution_models import ConstitutionVersion
from db.critique_log_models import CritiqueLogRecord
from db.critique_log_repo import whole_records
from db.evaluation_models import Evaluation, VerdictRow
from db.provenance_repo import dataset_chains

LOG: Any = CritiqueLogRecord.__table__  # type: ignore[attr-defined]
_FLAG: Any = AuditFlag.__table__  # type: ignore[attr-defined]
_TOKEN = re.compile(r'"([^"]*)"|(\S+)')
_WORD = re.compile(r"\w", re.UNICODE)
_ALNUM = re.compile(r"[^\W_]+", re.UNICODE)
MAX_TERMS = 32
# A prefix query needs this many letters or digits before its ``*``: the FTS5 index keeps
# prefix indexes for 2 and 3 characters (migration 0011), and 'a*' would match nearly every
# record.
MIN_PREFIX = 2


@dataclass(frozen=True)
class Term:
    text: str
    phrase: bool = False
    prefix: bool = False


@dataclass(frozen=True)
class SearchFilters:
    """What to search for; every field is optional (all records, newest first)."""

    query: str = ""
    constitution_id: int | None = None
    version_id: int | None = None
    principle_key: str | None = None
    engine_kind: str | None = None
    model: str | None = None
    kind: str | None = None
    chain_id: str | None = None
    evaluation_id: int | None = None
    training_dataset_id: int | None = None
    record_ids: tuple[int, ...] | None = None
    since: datetime | None = None
    until: datetime | None = None
    flagged: bool = False

    def as_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__dataclass_fields__:
            value = getattr(self, name)
            if value in (None, "", False):
                continue
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out


def fts_terms(query: str) -> list[Term]:
    """Words and "quoted phrases" of a user query; a trailing * on a word makes it a prefix.
    Pieces without a letter or digit are dropped (they could only ever match nothing)."""
    terms: list[Term] = []
    for m in _TOKEN.finditer(query):
        phrase, word = m.group(1), m.group(2)
        if phrase is not None:
            if _WORD.search(phrase):
                terms.append(Term(" ".join(phrase.split()), phrase=True))
            continue
        prefix = word.endswith("*") and len(word) > 1
        core = word.rstrip("*") if prefix else word
        if _WORD.search(core):
            terms.append(Term(core, prefix=prefix))
    return terms[:MAX_TERMS]


def short_prefixes(query: str) -> list[str]:
    """The prefix terms of ``query`` (``word*``) with fewer than MIN_PREFIX letters or digits
    in their last word (the part the prefix applies to)."""
    out = []
    for t in fts_terms(query):
        if t.prefix:
            pieces = _ALNUM.findall(t.text)
            if not pieces or len(pieces[-1]) < MIN_PREFIX:
                out.append(t.text + "*")
    return out


def _quoted(text_: str) -> str:
    return '"' + text_.replace('"', '""') + '"'


def meta_token(label: str, value: object) -> str:
    """The ``meta`` column token for a filter value, as the migration's trigger writes it:
    '0mkd<kind>', '0mpk<hex of the principle key>', '0mcv<version id>'. One token each, so a
    filtered text search is an intersection of doclists inside the index."""
    if label == "pk":
        value = str(value).encode("utf-8").hex()
    return f"0m{label}{value}"


def sqlite_match(terms: Sequence[Term], meta: Sequence[str] = ()) -> str:
    """An FTS5 MATCH expression: every term and meta token a quoted string (implicit AND)."""
    parts = [_quoted(t.text) + ("*" if t.prefix else "") for t in terms]
    return " ".join(parts + [_quoted(m) for m in meta])


def _meta_tokens(f: SearchFilters) -> list[str]:
    out = []
    if f.kind:
        out.append(meta_token("kd", f.kind))
    if f.principle_key:
        out.append(meta_token("pk", f.principle_key))
    if f.version_id is not None:
        out.append(meta_token("cv", f.version_id))
    return out


def postgres_tsquery(terms: Sequence[Term]) -> ColumnElement[Any]:
    """A tsquery ANDing one bound-parameter query per term: phrases and words through
    phraseto/plainto_tsquery (which take plain text), prefixes as ``word:*`` built from
    letters and digits only, so no user text is parsed as tsquery syntax."""
    parts: list[ColumnElement[Any]] = []
    for t in terms:
        if t.prefix:
            pieces = _ALNUM.findall(t.text)
            last = pieces[-1] + ":*" if pieces else ""
            if len(pieces) > 1:
                parts.append(func.plainto_tsquery("simple", " ".join(pieces[:-1])))
            if last:
                parts.append(func.to_tsquery("simple", last))
        elif t.phrase:
            parts.append(func.phraseto_tsquery("simple", t.text))
        else:
            parts.append(func.plainto_tsquery("simple", t.text))
    if not parts:
        return func.plainto_tsquery("simple", "")  # matches nothing
    query = parts[0]
    for part in parts[1:]:
        query = query.op("&&")(part)
    return query


def _flagged_ids() -> Select[Any]:
    latest: Select[Any] = select(func.max(literal_column("f2.id"))).select_from(
        _FLAG.alias("f2")).where(literal_column("f2.record_id") == _FLAG.c.record_id)
    return select(_FLAG.c.record_id).where(_FLAG.c.action == FLAG,
                                           _FLAG.c.id == latest.scalar_subquery())


def _evaluation_chains(dialect: str, evaluation_id: int) -> Select[Any]:
    if dialect == "postgresql":
        ids: Select[Any] = select(literal_column("(json_array_elements_text(v.record_ids))::int")
                     ).select_from(text("verdict v")).where(
            literal_column("v.evaluation_id") == evaluation_id)
    else:
        ids = select(literal_column("CAST(j.value AS INTEGER)")).select_from(
            text("verdict v, json_each(v.record_ids) j")).where(
            literal_column("v.evaluation_id") == evaluation_id)
    inner = LOG.alias("l2")
    return select(inner.c.chain_id).where(inner.c.id.in_(ids))


def _conditions(dialect: str, f: SearchFilters, *, fts_driven: bool = False
                ) -> list[ColumnElement[bool]]:
    c: Any = LOG.c
    if fts_driven:
        # SQLite: a unary + keeps the planner from driving the query from a column index and
        # probing the FTS index row by row (seconds at 1M rows); the FTS match leads instead.
        c = {col.name: literal_column(f"+critique_log.{col.name}", type_=col.type)
             for col in LOG.c}
        c = _Columns(c)
    out: list[ColumnElement[bool]] = []
    if f.version_id is not None:
        out.append(c.constitution_version_id == f.version_id)
    elif f.constitution_id is not None:
        out.append(c.constitution_version_id.in_(
            select(ConstitutionVersion.id).where(  # type: ignore[call-overload]
                ConstitutionVersion.constitution_id == f.constitution_id)))
    for name in ("principle_key", "engine_kind", "model", "kind", "chain_id"):
        value = getattr(f, name)
        if value:
            out.append(c[name] == value)
    if f.evaluation_id is not None:
        out.append(c.chain_id.in_(_evaluation_chains(dialect, f.evaluation_id)))
    if f.training_dataset_id is not None:
        out.append(c.chain_id.in_(dataset_chains(f.training_dataset_id)))
    if f.record_ids is not None:
        out.append(c.id.in_(list(f.record_ids)))
    if f.since is not None:
        out.append(c.created_at >= f.since)
    if f.until is not None:
        out.append(c.created_at < f.until)
    if f.flagged:
        out.append(c.id.in_(_flagged_ids()))
    return out


class _Columns:
    """Attribute and item access over a dict of column expressions (like ``Table.c``)."""

    def __init__(self, cols: dict[str, Any]) -> None:
        self._cols = cols

    def __getattr__(self, name: str) -> Any:
        return self._cols[name]

    def __getitem__(self, name: str) -> Any:
        return self._cols[name]


def _statement(dialect: str, f: SearchFilters, *, newest_first: bool, cursor: int | None,
               columns: Sequence[Any] | None = None) -> Select[Any] | None:
    """The search as one SELECT, or None when the query has no searchable term."""
    cols = list(columns) if columns is not None else [LOG]
    terms = fts_terms(f.query) if f.query.strip() else []
    if f.query.strip() and not terms:
        return None
    meta = _meta_tokens(f) if dialect == "sqlite" else []
    # SQLite, no text but two or more of kind / principle / version: their meta tokens'
    # doclists are intersected inside the FTS index (one column index would read every row of
    # its value and check the others in the table: ~100 ms at 1M records).
    by_meta = not terms and len(meta) >= 2
    if (terms or by_meta) and dialect == "sqlite":
        fts = table("critique_fts", column("rowid", Integer))
        key: Any = fts.c.rowid  # ordering on the FTS rowid lets FTS5 stream and stop early
        stmt = select(*cols).select_from(fts.join(LOG, LOG.c.id == fts.c.rowid)).where(
            text("critique_fts MATCH :fts_query").bindparams(
                fts_query=sqlite_match(terms, meta)))
    elif terms:
        fts = table("critique_fts", column("id", Integer), column("document"))
        key = LOG.c.id
        stmt = select(*cols).select_from(fts.join(LOG, LOG.c.id == fts.c.id)).where(
            fts.c.document.op("@@")(postgres_tsquery(terms)))
    else:
        key = LOG.c.id
        stmt = select(*cols).select_from(LOG)
    conds = _conditions(dialect, f, fts_driven=(bool(terms) or by_meta) and dialect == "sqlite")
    if cursor is not None:
        conds.append(key < cursor if newest_first else key > cursor)
    if conds:
        stmt = stmt.where(*conds)
    return stmt.order_by(key.desc() if newest_first else key.asc())


def search_page(session: Session, *, filters: SearchFilters, limit: int = 50,
                before_id: int | None = None) -> list[CritiqueLogRecord] | None:
    """One page, newest first, of records with id < ``before_id`` (None: from the newest).
    Returns None when the query has no searchable term."""
    stmt = _statement(session.get_bind().dialect.name, filters, newest_first=True,
                      cursor=before_id)
    if stmt is None:
        return None
    rows = session.execute(stmt.limit(limit)).mappings().all()
    return whole_records(session, rows)


def count_matches(session: Session, *, filters: SearchFilters, cap: int = 10_000) -> int:
    """How many records match, counting at most ``cap + 1`` (so a broad query stays fast)."""
    dialect = session.get_bind().dialect.name
    terms = fts_terms(filters.query)
    if dialect == "sqlite" and terms and filters == SearchFilters(query=filters.query):
        # Only a text query: count in the index alone, without reading the log's rows.
        inner = text("SELECT rowid FROM critique_fts WHERE critique_fts MATCH :q LIMIT :n")
        sub = inner.bindparams(q=sqlite_match(terms), n=cap + 1).columns(
            column("rowid", Integer)).subquery()
        return int(session.execute(select(func.count()).select_from(sub)).scalar_one())
    stmt = _statement(dialect, filters, newest_first=True, cursor=None, columns=[LOG.c.id])
    if stmt is None:
        return 0
    capped = stmt.order_by(None).limit(cap + 1).subquery()
    return int(session.execute(select(func.count()).select_from(capped)).scalar_one())


def iter_matches(session: Session, *, filters: SearchFilters, batch: int = 1000
                 ) -> Iterator[list[CritiqueLogRecord]]:
    """Every matching record, oldest first, a batch at a time (keyset paging: constant memory)."""
    dialect = session.get_bind().dialect.name
    cursor: int | None = None
    while True:
        stmt = _statement(dialect, filters, newest_first=False, cursor=cursor)
        if stmt is None:
            return
        rows = session.execute(stmt.limit(batch)).mappings().all()
        if not rows:
            return
        page = whole_records(session, rows)
        yield page
        session.expunge_all()
        cursor = page[-1].id


def like_scan_ids(session: Session, *, needle: str, limit: int = 50) -> list[int]:
    """The naive alternative (a LIKE '%…%' scan over prompt and output), for the benchmark
    (the stored prompt: after its shared prefix, as the search index has it)."""
    pattern = "%" + needle.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
    stmt = select(LOG.c.id).where(LOG.c.prompt_sent.like(pattern, escape="\\")
                                  | LOG.c.output.like(pattern, escape="\\")
                                  ).order_by(LOG.c.id.desc()).limit(limit)
    return [int(i) for i in session.execute(stmt).scalars()]


# --- provenance ----------------------------------------------------------------------------


_VERDICTS_CITING = (
    "SELECT DISTINCT v.evaluation_id, e.name, v.item_id, v.p_a FROM verdict v "
    "JOIN evaluation e ON e.id = v.evaluation_id CROSS JOIN {} "
    "WHERE CAST(j.value AS INTEGER) IN :ids ORDER BY v.evaluation_id, v.item_id")
_VERDICTS_CITING_PG = _VERDICTS_CITING.format("json_array_elements_text(v.record_ids) AS j(value)")
_VERDICTS_CITING_SQLITE = _VERDICTS_CITING.format("json_each(v.record_ids) AS j")


def verdicts_citing(session: Session, *, record_ids: Sequence[int]
                    ) -> list[tuple[int, str, int, float]]:
    """(evaluation id, evaluation name, item id, p(A)) of each verdict citing one of the
    records (a verdict keeps the critique-log ids of its variants)."""
    ids = sorted({int(i) for i in record_ids})
    if not ids:
        return []
    pg = session.get_bind().dialect.name == "postgresql"
    stmt = text(_VERDICTS_CITING_PG if pg else _VERDICTS_CITING_SQLITE).bindparams(
        bindparam("ids", expanding=True))
    return [(int(r[0]), str(r[1]), int(r[2]), float(r[3]))
            for r in session.execute(stmt, {"ids": ids}).all()]


def evaluation_verdicts(session: Session, *, evaluation_id: int, limit: int
                        ) -> list[tuple[int, float, list[int]]]:
    table_: Any = VerdictRow.__table__  # type: ignore[attr-defined]
    rows = session.execute(select(table_.c.item_id, table_.c.p_a, table_.c.record_ids).where(
        table_.c.evaluation_id == evaluation_id).order_by(table_.c.item_id).limit(limit)).all()
    return [(int(r[0]), float(r[1]), [int(i) for i in r[2]]) for r in rows]


def evaluation_choices(session: Session, *, limit: int = 200) -> list[tuple[int, str]]:
    table_: Any = Evaluation.__table__  # type: ignore[attr-defined]
    rows = session.execute(select(table_.c.id, table_.c.name).order_by(table_.c.id.desc())
                           .limit(limit)).all()
    return [(int(r[0]), str(r[1])) for r in rows]


def distinct_values(session: Session, *, column_name: str, limit: int = 200) -> list[str]:
    """Distinct non-empty values of a critique-log column (kinds, models, engines)."""
    col_ = LOG.c[column_name]
    rows = session.execute(select(col_).where(col_.is_not(None)).distinct().order_by(col_)
                           .limit(limit)).scalars()
    return [str(v) for v in rows if v]
