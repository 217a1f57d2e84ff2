"""Reading and writing stored settings (keyword-only; the caller owns the session)."""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from db.base_models import utcnow
from db.settings_models import StoredSetting


def get_setting(session: Session, *, key: str) -> dict[str, Any] | None:
    row = session.get(StoredSetting, key)
    return dict(row.value) if row is not None else None


def put_setting(session: Session, *, key: str, value: dict[str, Any], actor: str) -> None:
    row = session.get(StoredSetting, key)
    if row is None:
        session.add(StoredSetting(key=key, value=value, updated_by=actor))
    else:
        row.value, row.updated_by, row.updated_at = value, actor, utcnow()
        session.add(row)
    session.flush()
