"""Annotations on critique-log records: flags (flag / unflag, the newest row counts) and
comments, both append-only. Searching the log is in ``db/audit_search_repo.py``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from db.audit_models import AuditComment, AuditFlag

_FLAG: Any = AuditFlag.__table__  # type: ignore[attr-defined]
_COMMENT: Any = AuditComment.__table__  # type: ignore[attr-defined]


def flag_state(session: Session, *, record_ids: Sequence[int]) -> dict[int, AuditFlag]:
    """The latest flag row of each record that has one (action "flag" means flagged now)."""
    if not record_ids:
        return {}
    latest = select(func.max(_FLAG.c.id)).where(_FLAG.c.record_id.in_(list(record_ids))
                                                ).group_by(_FLAG.c.record_id)
    rows = session.execute(select(AuditFlag).where(_FLAG.c.id.in_(latest))).scalars().all()
    return {r.record_id: r for r in rows}


def flag_history(session: Session, *, record_id: int) -> list[AuditFlag]:
    return list(session.execute(select(AuditFlag).where(_FLAG.c.record_id == record_id)
                                .order_by(_FLAG.c.id)).scalars())


def add_flag(session: Session, *, record_id: int, action: str, reason: str, actor: str
             ) -> AuditFlag:
    row = AuditFlag(record_id=record_id, action=action, reason=reason, actor=actor)
    session.add(row)
    session.flush()
    return row


def comments(session: Session, *, record_id: int) -> list[AuditComment]:
    return list(session.execute(select(AuditComment).where(_COMMENT.c.record_id == record_id)
                                .order_by(_COMMENT.c.id)).scalars())


def comment_counts(session: Session, *, record_ids: Sequence[int]) -> dict[int, int]:
    if not record_ids:
        return {}
    rows = session.execute(select(_COMMENT.c.record_id, func.count()).where(
        _COMMENT.c.record_id.in_(list(record_ids))).group_by(_COMMENT.c.record_id)).all()
    return {int(r[0]): int(r[1]) for r in rows}


def add_comment(session: Session, *, record_id: int, body: str, actor: str) -> AuditComment:
    row = AuditComment(record_id=record_id, body=body, actor=actor)
    session.add(row)
    session.flush()
    return row


def comments_for(session: Session, *, record_ids: Sequence[int]) -> dict[int, list[AuditComment]]:
    """Comments of several records at once (for exports), oldest first."""
    out: dict[int, list[AuditComment]] = {}
    if not record_ids:
        return out
    rows = session.execute(select(AuditComment).where(
        _COMMENT.c.record_id.in_(list(record_ids))).order_by(_COMMENT.c.id)).scalars()
    for r in rows:
        out.setdefault(r.record_id, []).append(r)
    return out
