"""Keyword-only repository functions for datasets made by training stages and their samples."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import Session, col, select

from db.training_models import AiPairSample, SlCaiSample, TrainingDataset

_CHUNK = 500


def create_dataset(session: Session, *, kind: str, name: str, job_id: int | None,
                   constitution_version_id: int | None, model: str, config: dict[str, Any],
                   source: str, source_sha256: str, created_by: str) -> TrainingDataset:
    row = TrainingDataset(kind=kind, name=name[:200], job_id=job_id,
                          constitution_version_id=constitution_version_id, model=model[:300],
                          config=config, source=source[:500], source_sha256=source_sha256,
                          created_by=created_by)
    session.add(row)
    session.flush()
    return row


def get_dataset(session: Session, *, dataset_id: int) -> TrainingDataset | None:
    return session.get(TrainingDataset, dataset_id)


def dataset_of_job(session: Session, *, job_id: int, kind: str) -> TrainingDataset | None:
    """The dataset a job made (the first, if several), so a restarted job appends to it."""
    return session.exec(select(TrainingDataset)
                        .where(TrainingDataset.job_id == job_id, TrainingDataset.kind == kind)
                        .order_by(col(TrainingDataset.id)).limit(1)).first()


def list_datasets(session: Session, *, kind: str | None = None, limit: int = 200
                  ) -> Sequence[TrainingDataset]:
    """Newest first."""
    query = select(TrainingDataset)
    if kind is not None:
        query = query.where(TrainingDataset.kind == kind)
    return session.exec(query.order_by(col(TrainingDataset.id).desc()).limit(limit)).all()


def _model_for(kind: str) -> type[SlCaiSample] | type[AiPairSample]:
    return SlCaiSample if kind == "sl_cai" else AiPairSample


def insert_sl_cai_samples(session: Session, *, dataset_id: int,
                          rows: Sequence[dict[str, Any]]) -> int:
    return _insert(session, SlCaiSample, dataset_id, rows)


def insert_ai_pairs(session: Session, *, dataset_id: int, rows: Sequence[dict[str, Any]]) -> int:
    return _insert(session, AiPairSample, dataset_id, rows)


def _insert(session: Session, model: type[SlCaiSample] | type[AiPairSample], dataset_id: int,
            rows: Sequence[dict[str, Any]]) -> int:
    conn = session.connection()
    for start in range(0, len(rows), _CHUNK):
        conn.execute(insert(model), [{**r, "dataset_id": dataset_id}
                                     for r in rows[start:start + _CHUNK]])
    return len(rows)


def done_positions(session: Session, *, dataset_id: int, kind: str) -> set[int]:
    model = _model_for(kind)
    return set(session.exec(select(model.position)
                            .where(model.dataset_id == dataset_id)).all())


def count_samples(session: Session, *, dataset_id: int, kind: str) -> int:
    model = _model_for(kind)
    return session.exec(select(func.count()).select_from(model)
                        .where(model.dataset_id == dataset_id)).one()


def sl_cai_samples(session: Session, *, dataset_id: int) -> Sequence[SlCaiSample]:
    return session.exec(select(SlCaiSample).where(SlCaiSample.dataset_id == dataset_id)
                        .order_by(col(SlCaiSample.position))).all()


def ai_pairs(session: Session, *, dataset_id: int) -> Sequence[AiPairSample]:
    return session.exec(select(AiPairSample).where(AiPairSample.dataset_id == dataset_id)
                        .order_by(col(AiPairSample.position))).all()
