"""Keyword-only repository functions for comparisons, their responses and verdicts."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from db.base_models import utcnow
from db.comparison_models import (
    Comparison,
    ComparisonAdjudication,
    ComparisonResponse,
    ComparisonVerdict,
    ComparisonVote,
)


def create_comparison(session: Session, **fields: Any) -> Comparison:
    row = Comparison(**fields)
    session.add(row)
    session.flush()
    return row


def get_comparison(session: Session, *, comparison_id: int) -> Comparison | None:
    return session.get(Comparison, comparison_id)


def list_comparisons(session: Session, *, limit: int = 100) -> Sequence[Comparison]:
    return session.exec(select(Comparison).order_by(col(Comparison.id).desc()).limit(limit)).all()


def comparisons_with_status(session: Session, *, statuses: Sequence[str]
                            ) -> Sequence[Comparison]:
    return session.exec(select(Comparison).where(col(Comparison.status).in_(statuses))
                        .order_by(col(Comparison.id))).all()


def set_status(session: Session, *, comparison_id: int, status: str, error: str = "") -> None:
    row = session.get(Comparison, comparison_id)
    if row is not None:
        row.status, row.error, row.updated_at = status, error, utcnow()
        session.add(row)


def _count(session: Session, model: type[ComparisonResponse] | type[ComparisonVerdict],
           comparison_id: int) -> int:
    return session.exec(select(func.count()).select_from(model)
                        .where(model.comparison_id == comparison_id)).one()


def _advance(session: Session, comparison_id: int) -> int:
    session.flush()
    done = (_count(session, ComparisonResponse, comparison_id)
            + _count(session, ComparisonVerdict, comparison_id))
    row = session.get(Comparison, comparison_id)
    if row is not None:
        row.done_count, row.updated_at = done, utcnow()
        session.add(row)
    return done


def insert_responses(session: Session, *, comparison_id: int, rows: Sequence[dict[str, Any]]
                     ) -> int:
    """Store responses and advance the progress counter; returns the new count of done steps."""
    for r in rows:
        session.add(ComparisonResponse(comparison_id=comparison_id, **r))
    return _advance(session, comparison_id)


def insert_verdicts(session: Session, *, comparison_id: int, rows: Sequence[dict[str, Any]]
                    ) -> int:
    for r in rows:
        session.add(ComparisonVerdict(comparison_id=comparison_id, **r))
    return _advance(session, comparison_id)


def responded(session: Session, *, comparison_id: int, policy_index: int) -> set[int]:
    """Prompt indexes this policy has a stored response for."""
    return set(session.exec(select(ComparisonResponse.prompt_index).where(
        ComparisonResponse.comparison_id == comparison_id,
        ComparisonResponse.policy_index == policy_index)).all())


def judged(session: Session, *, comparison_id: int) -> set[tuple[int, int, int]]:
    """(prompt, policy_a, policy_b) triples with a stored verdict."""
    rows = session.exec(select(ComparisonVerdict.prompt_index, ComparisonVerdict.policy_a,
                               ComparisonVerdict.policy_b)
                        .where(ComparisonVerdict.comparison_id == comparison_id)).all()
    return {(int(p), int(a), int(b)) for p, a, b in rows}


def responses(session: Session, *, comparison_id: int) -> Sequence[ComparisonResponse]:
    return session.exec(select(ComparisonResponse)
                        .where(ComparisonResponse.comparison_id == comparison_id)
                        .order_by(col(ComparisonResponse.prompt_index),
                                  col(ComparisonResponse.policy_index))).all()


def verdicts(session: Session, *, comparison_id: int) -> Sequence[ComparisonVerdict]:
    return session.exec(select(ComparisonVerdict)
                        .where(ComparisonVerdict.comparison_id == comparison_id)
                        .order_by(col(ComparisonVerdict.prompt_index),
                                  col(ComparisonVerdict.policy_a),
                                  col(ComparisonVerdict.policy_b))).all()


def get_verdict(session: Session, *, verdict_id: int) -> ComparisonVerdict | None:
    return session.get(ComparisonVerdict, verdict_id)


def add_vote(session: Session, *, comparison_id: int, verdict_id: int, voter: str,
             label: float) -> ComparisonVote:
    row = ComparisonVote(comparison_id=comparison_id, verdict_id=verdict_id, voter=voter[:120],
                         label=label)
    session.add(row)
    session.flush()
    return row


def current_votes(session: Session, *, comparison_id: int) -> dict[tuple[int, str], float]:
    """(verdict id, voter) -> that voter's newest label."""
    rows = session.exec(select(ComparisonVote).where(ComparisonVote.comparison_id == comparison_id)
                        .order_by(col(ComparisonVote.id))).all()
    return {(r.verdict_id, r.voter): r.label for r in rows}


def add_adjudication(session: Session, *, comparison_id: int, verdict_id: int,
                     adjudicator: str, label: float, reason: str) -> ComparisonAdjudication:
    row = ComparisonAdjudication(comparison_id=comparison_id, verdict_id=verdict_id,
                                 adjudicator=adjudicator[:120], label=label, reason=reason)
    session.add(row)
    session.flush()
    return row


def current_adjudications(session: Session, *, comparison_id: int
                          ) -> dict[int, ComparisonAdjudication]:
    """Verdict id -> its newest ruling."""
    rows = session.exec(select(ComparisonAdjudication)
                        .where(ComparisonAdjudication.comparison_id == comparison_id)
                        .order_by(col(ComparisonAdjudication.id))).all()
    return {r.verdict_id: r for r in rows}
