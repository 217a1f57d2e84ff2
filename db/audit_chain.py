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

import orjson
from sqlalchemy import text
from sqlmodel import Session, col, select

from db.audit_models import AuditEvent
from db.base_models import utcnow
from db.paging import iter_by_id

GENESIS_HASH = "0" * 64
_PG_AUDIT_LOCK = 0x0A0D17  # advisory lock id: serialises appends on PostgreSQL


# One encoder for every call (json.dumps would build one per call); output is the same.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


_SCALARS = frozenset({str, int, bool, type(None)})
# floats both encoders write alike (Python switches to exponents outside this range)
_PLAIN_LOW, _PLAIN_HIGH = 1e-4, 1e16


def canonical_json(value: Any) -> str:
    """Sorted keys, no spaces, text as is: the JSON every hash in the store is taken over.

    orjson writes it several times faster, byte for byte the same wherever every float lies
    in [1e-4, 1e16) or is zero (they differ below and above, where Python writes exponents, and
    on NaN and infinities) and every value is a plain str, int, float, bool, None, list, tuple
    or dict with string keys; checked over every code point and millions of floats
    (tests/db/test_canonical_json.py). Anything else, or anything orjson refuses (integers
    beyond 64 bits), is written by the standard encoder as before."""
    if _plain(value):
        try:
            return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
        except (TypeError, orjson.JSONEncodeError):
            pass
    return _CANONICAL.encode(value)


def _plain(value: Any) -> bool:
    """Whether orjson writes ``value`` as the standard encoder does (non-string keys need no
    check: orjson refuses them)."""
    kind = type(value)
    if kind in _SCALARS:
        return True
    if kind is float:  # NaN and infinities fail both comparisons
        return bool(value == 0.0 or _PLAIN_LOW <= abs(value) < _PLAIN_HIGH)
    items = value.values() if kind is dict else value if kind is list or kind is tuple else None
    if items is None:
        return False
    for item in items:  # leaves checked inline: a call per leaf would double the check's cost
        kind = type(item)
        if kind in _SCALARS:
            continue
        if kind is float:
            if not (item == 0.0 or _PLAIN_LOW <= abs(item) < _PLAIN_HIGH):
                return False
        elif not _plain(item):
            return False
    return True


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
