"""Keyword-only repository functions for users. Callers hold the transaction; nothing here
checks roles or hashes passwords (that is the users service)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from sqlalchemy import func
from sqlmodel import Session, col, select

from db.base_models import utcnow
from db.user_models import UserAccount


def count_users(session: Session, *, role: str | None = None, enabled_only: bool = False) -> int:
    query = select(func.count()).select_from(UserAccount)
    if role is not None:
        query = query.where(UserAccount.role == role)
    if enabled_only:
        query = query.where(col(UserAccount.disabled).is_(False))
    return int(session.exec(query).one())


def get_user(session: Session, *, name: str) -> UserAccount | None:
    return session.exec(select(UserAccount).where(UserAccount.name == name)).first()


def list_users(session: Session) -> Sequence[UserAccount]:
    """By name."""
    return session.exec(select(UserAccount).order_by(col(UserAccount.name))).all()


def add_user(session: Session, *, name: str, role: str, password_hash: str,
             created_by: str) -> UserAccount:
    row = UserAccount(name=name, role=role, password_hash=password_hash, created_by=created_by,
                      session_key=new_session_key())
    session.add(row)
    session.flush()
    return row


def new_session_key() -> str:
    return secrets.token_hex(16)


def update_user(session: Session, *, name: str, role: str | None = None,
                password_hash: str | None = None, disabled: bool | None = None,
                end_sessions: bool = True) -> UserAccount | None:
    """Change the given fields of one user in the caller's transaction; None if no such user.
    With ``end_sessions`` the session key changes, so every signed-in session of the user
    ends at its next request."""
    row = get_user(session, name=name)
    if row is None:
        return None
    if end_sessions:
        row.session_key = new_session_key()
    if role is not None:
        row.role = role
    if password_hash is not None:
        row.password_hash = password_hash
    if disabled is not None:
        row.disabled = disabled
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return row


def delete_user(session: Session, *, name: str) -> UserAccount | None:
    row = get_user(session, name=name)
    if row is not None:
        session.delete(row)
        session.flush()
    return row


def enabled_admin_names(session: Session, *, lock: bool = False) -> list[str]:
    """Names of enabled admins; ``lock`` takes row locks (PostgreSQL) so two concurrent
    demotions cannot both see another admin left."""
    query = (select(UserAccount).where(UserAccount.role == "admin")
             .where(col(UserAccount.disabled).is_(False)).order_by(col(UserAccount.name)))
    if lock:
        query = query.with_for_update()
    return [row.name for row in session.exec(query).all()]
