"""The critique log: storing what the CAI core reports, and reading it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backend.cai.steplog import StepRecord
from db import critique_log_repo as repo
from db.engine import Database
from db.models import CritiqueLogRecord


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


class DbStepLogger:
    """A StepLogger that appends to the critique log; one transaction per batch."""

    def __init__(self, db: Database, actor: str) -> None:
        self._db = db
        self._actor = actor

    def log(self, records: list[StepRecord]) -> list[int]:
        ids: list[int] = []
        with self._db.write() as s:
            for r in records:
                row = repo.insert_record(
                    s, kind=r.kind, chain_id=r.chain_id, parent_id=r.parent_id, round=r.round,
                    constitution_version_id=r.constitution_version_id,
                    principle_key=r.principle_key, engine_kind=r.engine.kind,
                    model=r.engine.model[:300], params=r.params, seed=r.seed,
                    prompt_sent=r.prompt_sent, output=r.output, probabilities=r.probabilities,
                    latency_s=r.latency_s, actor=self._actor)
                assert row.id is not None
                ids.append(row.id)
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
