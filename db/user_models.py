"""Users and roles (issue 6; migration 0006).

Unlike the append-only tables, a user row changes (role, password, disabled); every change is
recorded as an audit event by the users service, without the password or its hash.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from db.base_models import utcnow


class UserAccount(SQLModel, table=True):
    """A person who signs in. ``name`` is stored lower-case; ``password_hash`` is an argon2id
    PHC string (it carries its own salt and cost parameters)."""

    __tablename__ = "user_account"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=64, unique=True, index=True)
    role: str = Field(max_length=20)
    password_hash: str = Field(max_length=300)
    disabled: bool = False
    # Random, replaced whenever the password, role or enabled state changes (and new for a
    # re-added name): a signed-in session remembers it and ends when it differs.
    session_key: str = Field(default="", max_length=64)
    created_by: str = Field(max_length=120)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
