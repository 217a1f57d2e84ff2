"""Keyword-only repository functions for prompt sets (callers hold the transaction)."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import insert
from sqlmodel import Session, col, select

from db.prompt_set_models import PromptSetItem, PromptSetRow

BUILTIN_NAME = "built-in"


def add_set(session: Session, *, name: str, source_format: str, source_name: str,
            source_sha256: str, prompts: Sequence[tuple[str, list[str]]], created_by: str,
            builtin: bool = False) -> PromptSetRow:
    row = PromptSetRow(name=name, source_format=source_format, source_name=source_name[:300],
                       source_sha256=source_sha256, prompt_count=len(prompts), builtin=builtin,
                       created_by=created_by)
    session.add(row)
    session.flush()
    table = PromptSetItem.__table__  # type: ignore[attr-defined]
    for start in range(0, len(prompts), 2000):
        session.execute(insert(table), [
            {"prompt_set_id": row.id, "position": start + i, "prompt": text, "tags": tags}
            for i, (text, tags) in enumerate(prompts[start:start + 2000])])
    return row


def list_sets(session: Session) -> Sequence[PromptSetRow]:
    """Built-in first, then newest first."""
    return session.exec(select(PromptSetRow).order_by(col(PromptSetRow.builtin).desc(),
                                                      col(PromptSetRow.id).desc())).all()


def get_set(session: Session, *, set_id: int) -> PromptSetRow | None:
    return session.get(PromptSetRow, set_id)


def by_name(session: Session, *, name: str) -> PromptSetRow | None:
    return session.exec(select(PromptSetRow).where(PromptSetRow.name == name)).first()


def builtin_set(session: Session) -> PromptSetRow | None:
    return session.exec(select(PromptSetRow).where(col(PromptSetRow.builtin).is_(True))
                        .order_by(col(PromptSetRow.id))).first()


def items(session: Session, *, set_id: int, limit: int) -> Sequence[PromptSetItem]:
    return session.exec(select(PromptSetItem).where(PromptSetItem.prompt_set_id == set_id)
                        .order_by(col(PromptSetItem.position)).limit(limit)).all()


def resolve(session: Session, ref: str | int | None) -> PromptSetRow | None:
    """A job config's ``prompt_set``: 'default' / empty (the built-in set) or an id."""
    text = str(ref if ref is not None else "").strip()
    if text in ("", "default"):
        return builtin_set(session)
    if text.isdigit():
        return get_set(session, set_id=int(text))
    return None
