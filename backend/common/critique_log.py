"""Writing what the CAI core reports (``StepRecord``) to the append-only critique log.

One writer for the services (previews, agreement runs) and the training stages (data stages,
RL rollouts): the same columns, the same hash, one multi-row INSERT per batch.
"""

from __future__ import annotations

from dataclasses import replace

from sqlmodel import Session

from backend.cai.steplog import StepRecord
from db import critique_log_repo as repo
from db.critique_log_repo import NewCritiqueRecord
from db.engine import Database

MODEL_CHARS = 300  # the column's width


def new_record(r: StepRecord, actor: str) -> NewCritiqueRecord:
    """A StepRecord as the critique log's columns."""
    return NewCritiqueRecord(
        kind=r.kind, chain_id=r.chain_id, parent_id=r.parent_id, round=r.round,
        constitution_version_id=r.constitution_version_id, principle_key=r.principle_key,
        engine_kind=r.engine.kind, model=r.engine.model[:MODEL_CHARS], params=r.params,
        seed=r.seed, prompt_sent=r.prompt_sent, output=r.output, probabilities=r.probabilities,
        latency_s=r.latency_s, actor=actor)


class DbStepLogger:
    """A StepLogger that appends to the critique log; one transaction (and one multi-row
    INSERT) per batch."""

    def __init__(self, db: Database, actor: str) -> None:
        self._db = db
        self._actor = actor

    def log(self, records: list[StepRecord]) -> list[int]:
        with self._db.write() as s:
            return repo.insert_records(s, [new_record(r, self._actor) for r in records])


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
                new = new_record(r, self._actor)
                parent = r.parent_id
                if parent is not None and parent < 0:
                    new = replace(new, parent_id=ids[parent])
                rows.append(new)
            for real in repo.insert_records(session, rows):
                placeholder -= 1
                ids[placeholder] = real
        return ids
