"""The critique log: storing what the CAI core reports (the writers live in
``backend.common.critique_log``, shared with the training stages), and reading it back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backend.common.critique_log import DbStepLogger, DeferredStepLogger
from db import critique_log_repo as repo
from db.critique_log_models import CritiqueLogRecord
from db.critique_log_repo import NewCritiqueRecord
from db.engine import Database

__all__ = ["CritiqueLogService", "DbStepLogger", "DeferredStepLogger", "LogEntry"]


@dataclass(frozen=True)
class LogEntry(NewCritiqueRecord):
    """A stored record: its content (the columns a writer gives, all hashed), its id, time
    and hash."""

    id: int
    created_at: datetime
    record_hash: str

    @staticmethod
    def of(row: CritiqueLogRecord) -> LogEntry:
        assert row.id is not None
        content = {name: getattr(row, name) for name in repo.HASHED_FIELDS}
        content["params"] = dict(row.params)
        if row.probabilities is not None:
            content["probabilities"] = dict(row.probabilities)
        return LogEntry(**content, id=row.id, created_at=row.created_at,
                        record_hash=row.record_hash)


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
