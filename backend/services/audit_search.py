"""The Audit tab's use-cases: search the critique log, read a record in full with its
provenance, and flag or comment on it (append-only; a comment never alters a record)."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from datetime import datetime

from backend.access import Action, Principal, require
from backend.cai.constitution import Principle
from backend.errors import NotFoundError, ValidationError
from backend.services.constitutions import ConstitutionService, VersionDetail
from backend.services.critique_log import LogEntry
from db import audit_annotations_repo as notes_repo
from db import audit_search_repo as repo
from db import critique_log_repo
from db.audit_chain import append_event
from db.audit_models import FLAG, UNFLAG
from db.audit_search_repo import SearchFilters
from db.engine import Database
from db.evaluation_models import Evaluation
from db.record_seal import seal_new_rows

MAX_QUERY = 500
MAX_NOTE = 4_000
PAGE_SIZE = 25
COUNT_CAP = 10_000

__all__ = ["AuditSearchService", "RecordDetail", "SearchFilters", "SearchPage"]


@dataclass(frozen=True)
class Hit:
    entry: LogEntry
    flagged: bool
    comments: int


@dataclass(frozen=True)
class SearchPage:
    hits: list[Hit]
    total: int  # capped at COUNT_CAP + 1
    next_before: int | None  # cursor of the next (older) page, None on the last page
    message: str = ""

    @property
    def total_label(self) -> str:
        return f"more than {COUNT_CAP:,}" if self.total > COUNT_CAP else f"{self.total:,}"


@dataclass(frozen=True)
class FlagEvent:
    action: str
    reason: str
    actor: str
    created_at: datetime


@dataclass(frozen=True)
class Comment:
    id: int
    body: str
    actor: str
    created_at: datetime


@dataclass(frozen=True)
class VerdictRef:
    evaluation_id: int
    evaluation_name: str
    item_id: int
    p_a: float


@dataclass(frozen=True)
class RecordDetail:
    entry: LogEntry
    version: VersionDetail | None
    principle: Principle | None
    chain: list[LogEntry]
    lineage: list[LogEntry]  # from the chain's first step down to this record
    flagged: bool
    flags: list[FlagEvent] = field(default_factory=list)
    comments: list[Comment] = field(default_factory=list)
    verdicts: list[VerdictRef] = field(default_factory=list)


def clean_note(text: str, what: str) -> str:
    """Normalise a flag reason or comment; refuse control and bidi characters."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").strip()
    if len(text) > MAX_NOTE:
        raise ValidationError(f"The {what} is {len(text):,} characters; the limit is "
                              f"{MAX_NOTE:,}. Shorten it.")
    for ch in text:
        if ch not in "\n\t" and unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn"):
            raise ValidationError(f"The {what} contains an invisible or control character "
                                  f"(U+{ord(ch):04X}); remove it.")
    return text


class AuditSearchService:
    def __init__(self, db: Database, constitutions: ConstitutionService) -> None:
        self._db = db
        self._constitutions = constitutions

    # --- search -----------------------------------------------------------------------------

    def search(self, filters: SearchFilters, *, before_id: int | None = None,
               page_size: int = PAGE_SIZE) -> SearchPage:
        """One page of matching records, newest first. A query that cannot be searched (no
        letters or digits, too long) gives an empty page with a message, never an error."""
        problem = filter_problem(filters)
        if problem:
            return SearchPage([], 0, None, problem)
        with self._db.read() as s:
            rows = repo.search_page(s, filters=filters, limit=page_size + 1,
                                    before_id=before_id)
            if rows is None:
                return SearchPage([], 0, None, "Nothing to search for: type at least one word "
                                  "with a letter or digit (quotes and symbols are ignored).")
            total = repo.count_matches(s, filters=filters, cap=COUNT_CAP)
            page = rows[:page_size]
            ids = [r.id for r in page if r.id is not None]
            flags = notes_repo.flag_state(s, record_ids=ids)
            counts = notes_repo.comment_counts(s, record_ids=ids)
        hits = [Hit(LogEntry.of(r), _is_flagged(flags.get(r.id or 0)), counts.get(r.id or 0, 0))
                for r in page]
        more = len(rows) > page_size
        return SearchPage(hits, total, page[-1].id if more and page else None)

    # --- one record and its provenance ------------------------------------------------------

    def record(self, record_id: int) -> RecordDetail:
        with self._db.read() as s:
            row = critique_log_repo.get_record(s, record_id=record_id)
            if row is None:
                raise NotFoundError(f"No critique-log record with id {record_id}; search for it "
                                    "or check the id.")
            entry = LogEntry.of(row)
            chain = [LogEntry.of(r) for r in critique_log_repo.chain_records(
                s, chain_id=row.chain_id)]
            flags = notes_repo.flag_history(s, record_id=record_id)
            notes = notes_repo.comments(s, record_id=record_id)
            verdicts = [VerdictRef(*v) for v in repo.verdicts_citing(
                s, record_ids=[e.id for e in chain])]
        by_id = {e.id: e for e in chain}
        lineage = [entry]
        while lineage[0].parent_id is not None and lineage[0].parent_id in by_id:
            lineage.insert(0, by_id[lineage[0].parent_id])
        version = principle = None
        if entry.constitution_version_id is not None:
            version = self._constitutions.version(entry.constitution_version_id)
            principle = next((p for p in version.content.principles
                              if p.key == entry.principle_key), None)
        return RecordDetail(
            entry, version, principle, chain, lineage,
            flagged=bool(flags) and flags[-1].action == FLAG,
            flags=[FlagEvent(f.action, f.reason, f.actor, f.created_at) for f in flags],
            comments=[Comment(c.id or 0, c.body, c.actor, c.created_at) for c in notes],
            verdicts=verdicts)

    def principle_filters(self, version_id: int, principle_key: str) -> SearchFilters:
        """Provenance from a principle: the filters that show everything it produced."""
        version = self._constitutions.version(version_id)
        if not any(p.key == principle_key for p in version.content.principles):
            raise NotFoundError(f"Version {version.info.label} of {version.constitution.name} "
                                f"has no principle {principle_key!r}.")
        return SearchFilters(version_id=version_id, principle_key=principle_key)

    def evaluation_verdicts(self, evaluation_id: int, *, limit: int = 200
                            ) -> list[tuple[int, float, list[int]]]:
        """Provenance from an evaluation: (item id, p(A), critique-log record ids) per verdict."""
        with self._db.read() as s:
            if s.get(Evaluation, evaluation_id) is None:
                raise NotFoundError(f"No evaluation with id {evaluation_id}.")
            return repo.evaluation_verdicts(s, evaluation_id=evaluation_id, limit=limit)

    # --- flags and comments (append-only) ---------------------------------------------------

    def flag(self, record_id: int, reason: str, *, actor: Principal) -> RecordDetail:
        return self._flag(record_id, reason, FLAG, actor)

    def unflag(self, record_id: int, reason: str, *, actor: Principal) -> RecordDetail:
        return self._flag(record_id, reason, UNFLAG, actor)

    def _flag(self, record_id: int, reason: str, action: str, actor: Principal) -> RecordDetail:
        require(actor, Action.FLAG)
        reason = clean_note(reason, "reason")
        with self._db.write() as s:
            if critique_log_repo.get_record(s, record_id=record_id) is None:
                raise NotFoundError(f"No critique-log record with id {record_id}.")
            history = notes_repo.flag_history(s, record_id=record_id)
            flagged = bool(history) and history[-1].action == FLAG
            if flagged == (action == FLAG):
                raise ValidationError(f"Record {record_id} is already "
                                      f"{'flagged' if flagged else 'not flagged'}.")
            if not reason:
                raise ValidationError(
                    f"Write a reason to {'flag' if action == FLAG else 'clear the flag of'} "
                    f"record {record_id}: it goes into the audit trail with your name.")
            row = notes_repo.add_flag(s, record_id=record_id, action=action, reason=reason,
                                actor=actor.name)
            append_event(s, actor=actor.name, action=f"audit.{action}",
                         entity_type="critique_log", entity_id=str(record_id),
                         payload={"flag_id": row.id, "reason": reason})
            seal_new_rows(s, tables=("audit_flag",))
        return self.record(record_id)

    def comment(self, record_id: int, body: str, *, actor: Principal) -> RecordDetail:
        require(actor, Action.FLAG)
        body = clean_note(body, "comment")
        if not body:
            raise ValidationError("The comment is empty; write something to add.")
        with self._db.write() as s:
            if critique_log_repo.get_record(s, record_id=record_id) is None:
                raise NotFoundError(f"No critique-log record with id {record_id}.")
            row = notes_repo.add_comment(s, record_id=record_id, body=body, actor=actor.name)
            append_event(s, actor=actor.name, action="audit.comment",
                         entity_type="critique_log", entity_id=str(record_id),
                         payload={"comment_id": row.id, "body": body})
            seal_new_rows(s, tables=("audit_comment",))
        return self.record(record_id)

    # --- choices for the filters ------------------------------------------------------------

    def evaluations(self) -> list[tuple[str, int]]:
        with self._db.read() as s:
            return [(f"#{i} {n}", i) for i, n in repo.evaluation_choices(s)]

    def values(self, column_name: str) -> list[str]:
        """Distinct kinds, engines or models in the log, for the filter choices."""
        with self._db.read() as s:
            return repo.distinct_values(s, column_name=column_name)


def filter_problem(filters: SearchFilters) -> str | None:
    """Why these filters cannot be searched (a message saying what to change), or None."""
    if len(filters.query) > MAX_QUERY:
        return (f"The search text is {len(filters.query):,} characters; the limit is "
                f"{MAX_QUERY}. Shorten it.")
    bad = _control_character(filters)
    if bad:
        return f"The {bad[0]} contains a control character (U+{ord(bad[1]):04X}); remove it."
    if filters.since and filters.until and filters.since >= filters.until:
        return "The date range is empty: 'from' must be before 'to'."
    short = repo.short_prefixes(filters.query)
    if short:
        return (f"A prefix search needs at least {repo.MIN_PREFIX} letters before the *: "
                f"{', '.join(repr(t) for t in short[:3])} would match almost everything. "
                "Type more letters.")
    return None


def _control_character(filters: SearchFilters) -> tuple[str, str] | None:
    """(field, character) of the first control character in a text filter, if any (no store
    can match it, and PostgreSQL refuses NUL in text parameters)."""
    for name in ("query", "principle_key", "engine_kind", "model", "kind", "chain_id"):
        value = getattr(filters, name) or ""
        for ch in value:
            if unicodedata.category(ch) == "Cc" and ch not in "\t\n":
                label = "search text" if name == "query" else name.replace("_", " ")
                return label, ch
    return None


def _is_flagged(row: object) -> bool:
    return row is not None and getattr(row, "action", None) == FLAG
