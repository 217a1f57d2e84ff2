"""Keyword-only repository functions for constitutions, versions, principles, few-shots."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlmodel import Session, col, select

from db.constitution_models import Constitution, ConstitutionVersion, FewShotRow, PrincipleRow


def create_constitution(
    session: Session, *, name: str, description: str, created_by: str
) -> Constitution:
    row = Constitution(name=name, description=description, created_by=created_by)
    session.add(row)
    session.flush()
    return row


def get_constitution(session: Session, *, constitution_id: int) -> Constitution | None:
    return session.get(Constitution, constitution_id)


def find_constitution(session: Session, *, name: str) -> Constitution | None:
    return session.exec(select(Constitution).where(Constitution.name == name)).first()


def list_constitutions(session: Session) -> Sequence[Constitution]:
    return session.exec(select(Constitution).order_by(col(Constitution.name))).all()


def head_version(session: Session, *, constitution_id: int) -> ConstitutionVersion | None:
    return session.exec(
        select(ConstitutionVersion)
        .where(ConstitutionVersion.constitution_id == constitution_id)
        .order_by(col(ConstitutionVersion.number).desc())
        .limit(1)
    ).first()


def get_version(session: Session, *, version_id: int) -> ConstitutionVersion | None:
    return session.get(ConstitutionVersion, version_id)


def get_version_by_number(
    session: Session, *, constitution_id: int, number: int
) -> ConstitutionVersion | None:
    return session.exec(
        select(ConstitutionVersion).where(
            ConstitutionVersion.constitution_id == constitution_id,
            ConstitutionVersion.number == number,
        )
    ).first()


def list_versions(
    session: Session, *, constitution_id: int, limit: int = 50, offset: int = 0
) -> Sequence[ConstitutionVersion]:
    return session.exec(
        select(ConstitutionVersion)
        .where(ConstitutionVersion.constitution_id == constitution_id)
        .order_by(col(ConstitutionVersion.number).desc())
        .offset(offset)
        .limit(limit)
    ).all()


def iter_all_versions(session: Session) -> Sequence[ConstitutionVersion]:
    return session.exec(select(ConstitutionVersion).order_by(col(ConstitutionVersion.id))).all()


def insert_version(
    session: Session,
    *,
    constitution_id: int,
    number: int,
    parent_id: int | None,
    content_hash: str,
    author: str,
    message: str,
    principles: Sequence[dict[str, Any]],
    few_shots: Sequence[dict[str, Any]],
) -> ConstitutionVersion:
    """Insert a version with its principles and few-shots. A clash on (constitution, number)
    raises sqlalchemy.exc.IntegrityError: somebody else saved that number first."""
    version = ConstitutionVersion(
        constitution_id=constitution_id,
        number=number,
        parent_id=parent_id,
        content_hash=content_hash,
        author=author,
        message=message,
    )
    session.add(version)
    session.flush()
    assert version.id is not None
    for position, p in enumerate(principles):
        session.add(PrincipleRow(version_id=version.id, position=position, **p))
    for position, f in enumerate(few_shots):
        session.add(FewShotRow(version_id=version.id, position=position, **f))
    session.flush()
    return version


def version_principles(session: Session, *, version_id: int) -> Sequence[PrincipleRow]:
    return session.exec(
        select(PrincipleRow)
        .where(PrincipleRow.version_id == version_id)
        .order_by(col(PrincipleRow.position))
    ).all()


def version_few_shots(session: Session, *, version_id: int) -> Sequence[FewShotRow]:
    return session.exec(
        select(FewShotRow)
        .where(FewShotRow.version_id == version_id)
        .order_by(col(FewShotRow.position))
    ).all()
