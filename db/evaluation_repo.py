"""Keyword-only repository functions for evaluations and their verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from db.models import Evaluation, PairItemRow, VerdictRow, utcnow


def create_evaluation(session: Session, **fields: Any) -> Evaluation:
    row = Evaluation(**fields)
    session.add(row)
    session.flush()
    return row


def get_evaluation(session: Session, *, evaluation_id: int) -> Evaluation | None:
    return session.get(Evaluation, evaluation_id)


def list_evaluations(session: Session, *, limit: int = 100) -> Sequence[Evaluation]:
    return session.exec(select(Evaluation).order_by(col(Evaluation.id).desc()).limit(limit)).all()


def evaluations_with_status(session: Session, *, statuses: Sequence[str]) -> Sequence[Evaluation]:
    return session.exec(select(Evaluation).where(col(Evaluation.status).in_(statuses))
                        .order_by(col(Evaluation.id))).all()


def set_status(session: Session, *, evaluation_id: int, status: str, error: str = "") -> None:
    row = session.get(Evaluation, evaluation_id)
    if row is not None:
        row.status, row.error, row.updated_at = status, error, utcnow()
        session.add(row)


def judged_item_ids(session: Session, *, evaluation_id: int) -> set[int]:
    return set(session.exec(select(VerdictRow.item_id)
                            .where(VerdictRow.evaluation_id == evaluation_id)).all())


def count_verdicts(session: Session, *, evaluation_id: int) -> int:
    return session.exec(select(func.count()).select_from(VerdictRow)
                        .where(VerdictRow.evaluation_id == evaluation_id)).one()


def insert_verdicts(session: Session, *, evaluation_id: int, rows: Sequence[dict[str, Any]]
                    ) -> int:
    """Insert verdicts and advance the evaluation's progress counter; returns the new count."""
    for r in rows:
        session.add(VerdictRow(evaluation_id=evaluation_id, **r))
    session.flush()
    done = count_verdicts(session, evaluation_id=evaluation_id)
    row = session.get(Evaluation, evaluation_id)
    if row is not None:
        row.done_count, row.updated_at = done, utcnow()
        session.add(row)
    return done


def evaluation_verdicts(session: Session, *, evaluation_id: int) -> Sequence[VerdictRow]:
    return session.exec(select(VerdictRow).where(VerdictRow.evaluation_id == evaluation_id)
                        .order_by(col(VerdictRow.item_id))).all()


def items_for(session: Session, *, item_ids: Sequence[int]) -> dict[int, PairItemRow]:
    """The pair items with these ids, by id (in chunks: SQLite limits bound parameters)."""
    out: dict[int, PairItemRow] = {}
    ids = list(item_ids)
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        for row in session.exec(select(PairItemRow).where(col(PairItemRow.id).in_(chunk))):
            assert row.id is not None
            out[row.id] = row
    return out


def dataset_item_ids(session: Session, *, dataset_id: int) -> list[int]:
    return [i for i in session.exec(select(PairItemRow.id)
                                    .where(PairItemRow.dataset_id == dataset_id)
                                    .order_by(col(PairItemRow.position))).all() if i is not None]
