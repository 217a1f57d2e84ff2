"""The critique log: storing what the CAI core reports, and reading it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from backend.cai.steplog import StepRecord
from db import critique_log_repo as repo
from db.critique_log_models import CritiqueLogRecord
from db.engine import Database


@dataclass(frozen=True)
class LogEntry:
    id: int
    created_at: datetime
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
    record_hash: str

    @staticmethod
    def of(row: CritiqueLogRecord) -> LogEntry:
        assert row.id is not None
        return LogEntry(row.id, row.created_at, row.kind, row.chain_id, row.parent_id, row.round,
                        row.constitution_version_id, row.principle_key, row.engine_kind,
                        row.model, dict(row.params), row.seed, row.prompt_sent, row.output,
                        dict(row.probabilities) if row.probabilities is not None else None,
                        row.latency_s, row.actor, row.record_hash)


def record_fields(r: StepRecord, actor: str) -> dict[str, object]:
    """A StepRecord as the critique log's columns (for ``critique_log_repo.insert_records``)."""
    return {"kind": r.kind, "chain_id": r.chain_id, "parent_id": r.parent_id, "round": r.round,
            "constitution_version_id": r.constitution_version_id,
            "principle_key": r.principle_key, "engine_kind": r.engine.kind,
            "model": r.engine.model[:300], "params": r.params, "seed": r.seed,
            "prompt_sent": r.prompt_sent, "output": r.output, "probabilities": r.probabilities,
            "latency_s": r.latency_s, "actor": actor}


class DbStepLogger:
    """A StepLogger that appends to the critique log; one transaction (and one multi-row
    INSERT) per batch."""

    def __init__(self, db: Database, actor: str) -> None:
        self._db = db
        self._actor = actor

    def log(self, records: list[StepRecord]) -> list[int]:
        with self._db.write() as s:
            return repo.insert_records(s, [record_fields(r, self._actor) for r in records])


class DeferredStepLogger:
    """A StepLogger that stores nothing yet: it hands out placeholder ids (negative, unique
    within this logger) and keeps the records, so that a caller can write them later in the
    same transaction as what refers to them (an agreement run's chunk: its log records and its
    verdicts commit together, on a writer thread). ``write`` stores them and returns the map
    from placeholder to real id; a record's ``parent_id`` may be a placeholder of an earlier
    batch and is mapped too."""

    def __init__(self, actor: str) -> None:
        self._actor = actor
        self.batches: list[list[StepRecord]] = []
        self._count = 0

    def log(self, records: list[StepRecord]) -> list[int]:
        self.batches.append(list(records))
        start = self._count
        self._count += len(records)
        return [-(start + i + 1) for i in range(len(records))]

    def write(self, session: Session) -> dict[int, int]:
        ids: dict[int, int] = {}
        placeholder = 0
        for batch in self.batches:
            rows = []
            for r in batch:
                fields = record_fields(r, self._actor)
                parent = r.parent_id
                if parent is not None and parent < 0:
                    fields["parent_id"] = ids[parent]
                rows.append(fields)
            for real in repo.insert_records(session, rows):
                placeholder -= 1
                ids[placeholder] = real
        return ids


class CritiqueLogService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def logger(self, actor: str) -> DbStepLogger:
        return DbStepLogger(self._db, actor)

    def get(self, record_id: int) -> LogEntry | None:
        with self._db.read() as s:
            row = repo.get_record(s, record_id=record_id)
            return LogEntry.of(row) if row else None

    def chain(self, chain_id: str) -> list[LogEntry]:
        with self._db.read() as s:
            return [LogEntry.of(r) for r in repo.chain_records(s, chain_id=chain_id)]

    def recent(self, *, limit: int = 50, offset: int = 0) -> list[LogEntry]:
        with self._db.read() as s:
            return [LogEntry.of(r) for r in repo.recent_records(s, limit=limit, offset=offset)]

    def count(self) -> int:
        with self._db.read() as s:
            return repo.count_records(s)

    def verify(self) -> list[int]:
        """Ids of records whose stored hash no longer matches their content."""
        with self._db.read() as s:
            return [r.id for r in repo.iter_records(s) if r.id is not None
                    and repo.record_hash(r) != r.record_hash]
