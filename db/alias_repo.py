"""Keyword-only repository functions for named aliases of constitution versions."""

from __future__ import annotations

from sqlmodel import Session, col, select

from db.ci_models import ConstitutionAlias


def set_alias(session: Session, *, constitution_id: int, name: str, version_id: int | None,
              set_by: str) -> ConstitutionAlias:
    row = ConstitutionAlias(constitution_id=constitution_id, name=name, version_id=version_id,
                            set_by=set_by[:120])
    session.add(row)
    session.flush()
    return row


def current(session: Session, *, constitution_id: int) -> dict[str, ConstitutionAlias]:
    """Alias name -> its newest row (removed aliases left out)."""
    rows = session.exec(select(ConstitutionAlias)
                        .where(ConstitutionAlias.constitution_id == constitution_id)
                        .order_by(col(ConstitutionAlias.id))).all()
    latest: dict[str, ConstitutionAlias] = {}
    for r in rows:
        latest[r.name] = r
    return {k: v for k, v in latest.items() if v.version_id is not None}


def history(session: Session, *, constitution_id: int, name: str) -> list[ConstitutionAlias]:
    return list(session.exec(select(ConstitutionAlias).where(
        ConstitutionAlias.constitution_id == constitution_id, ConstitutionAlias.name == name)
        .order_by(col(ConstitutionAlias.id))).all())


def all_rows(session: Session, *, constitution_id: int) -> list[ConstitutionAlias]:
    """Every alias row of a constitution, oldest first."""
    return list(session.exec(select(ConstitutionAlias)
                             .where(ConstitutionAlias.constitution_id == constitution_id)
                             .order_by(col(ConstitutionAlias.id))).all())
