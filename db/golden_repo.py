"""Keyword-only repository functions for golden cases (pairs pinned to a constitution)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session, col, select

from db.ci_models import GoldenCase


def add_case(session: Session, *, constitution_id: int, prompt: str, response_a: str,
             response_b: str, expected: str, note: str, created_by: str) -> GoldenCase:
    row = GoldenCase(constitution_id=constitution_id, prompt=prompt, response_a=response_a,
                     response_b=response_b, expected=expected, note=note, created_by=created_by)
    session.add(row)
    session.flush()
    return row


def list_cases(session: Session, *, constitution_id: int) -> Sequence[GoldenCase]:
    """Oldest first (the order they were pinned in)."""
    return session.exec(select(GoldenCase).where(GoldenCase.constitution_id == constitution_id)
                        .order_by(col(GoldenCase.id))).all()


def delete_case(session: Session, *, case_id: int) -> GoldenCase | None:
    """Delete one case in the caller's transaction; returns the deleted row, or None."""
    row = session.get(GoldenCase, case_id)
    if row is not None:
        session.delete(row)
        session.flush()
    return row
