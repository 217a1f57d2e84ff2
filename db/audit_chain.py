"""The audit log as a hash chain.

Each event stores ``prev_hash`` (the previous event's hash, or 64 zeros for the first) and
``hash = sha256(prev_hash + "\\n" + canonical JSON of its own fields)``. Changing, inserting or
deleting any row breaks the link at that row or the next, which ``verify_chain`` names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlmodel import Session, col, select

from db.audit_models import AuditEvent
from db.base_models import utcnow
from db.paging import iter_by_id

GENESIS_HASH = "0" * 64
_PG_AUDIT_LOCK = 0x0A0D17  # advisory lock id: serialises appends on PostgreSQL


# One encoder for every call (json.dumps would build one per call); output is the same.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value: Any) -> str:
    return _CANONICAL.encode(value)


def event_hash(event: AuditEvent) -> str:
    fields = {
        "id": event.id,
        "created_at": event.created_at.isoformat(timespec="microseconds"),
        "actor": event.actor,
        "action": event.action,
        "entity_type": event.entity_type,
        "entity_id": event.entity_id,
        "payload": event.payload,
    }
    data = (event.prev_hash + "\n" + canonical_json(fields)).encode("utf-8")
    return hashlib.sha256(data).hexdigest()


def append_event(
    session: Session,
    *,
    actor: str,
    action: str,
    entity_type: str,
    entity_id: str,
    payload: dict[str, Any],
) -> AuditEvent:
    """Append one event inside the caller's write transaction (which must hold the write lock)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    last = session.exec(select(AuditEvent).order_by(col(AuditEvent.id).desc()).limit(1)).first()
    event = AuditEvent(
        id=(last.id + 1) if last else 1,
        created_at=utcnow(),
        actor=actor,
        action=action,
        entity_type=entity_type,
        entity_id=entity_id,
        payload=canonical_json(payload),
        prev_hash=last.hash if last else GENESIS_HASH,
        hash="",
    )
    event.hash = event_hash(event)
    session.add(event)
    session.flush()
    return event


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    head_hash: str
    broken_id: int | None = None
    reason: str = ""


def iter_events(session: Session, batch: int = 1000) -> Iterator[AuditEvent]:
    return iter_by_id(session, AuditEvent, batch)


def verify_chain(session: Session) -> ChainReport:
    """Walk every event in order; report the first row whose link or hash does not hold."""
    prev = GENESIS_HASH
    checked = 0
    for event in iter_events(session):
        if event.prev_hash != prev:
            return ChainReport(False, checked, prev, event.id,
                               "its prev_hash does not match the previous event's hash "
                               "(an event before it was changed, removed or inserted)")
        if event_hash(event) != event.hash:
            return ChainReport(False, checked, prev, event.id,
                               "its contents do not match its hash (the row was altered)")
        prev = event.hash
        checked += 1
    return ChainReport(True, checked, prev)
