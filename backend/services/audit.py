"""Verifying that nothing stored was altered: the audit hash chain and version content hashes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlmodel import select

from backend.services.constitutions import load_content
from db import constitution_repo as repo
from db.audit_chain import verify_chain
from db.engine import Database
from db.models import AuditEvent

VERSION_ACTIONS = ("constitution.create", "constitution.save", "constitution.revert")


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    events_checked: int
    versions_checked: int
    head_hash: str
    problems: list[str] = field(default_factory=list)


class AuditService:
    def __init__(self, db: Database) -> None:
        self._db = db

    def verify(self) -> VerifyReport:
        """Walk the chain, then recompute every version's content hash from its stored rows and
        compare it with the version row and with the hash its audit event recorded."""
        with self._db.read() as s:
            chain = verify_chain(s)
            problems: list[str] = []
            if not chain.ok:
                problems.append(f"audit_event id {chain.broken_id}: {chain.reason}")
            recorded: dict[int, str] = {}
            events = s.exec(select(AuditEvent).where(
                AuditEvent.action.in_(VERSION_ACTIONS))).all()  # type: ignore[attr-defined]
            for event in events:
                payload = json.loads(event.payload)
                if isinstance(payload.get("version_id"), int):
                    recorded[payload["version_id"]] = str(payload.get("content_hash"))
            versions = repo.iter_all_versions(s)
            for v in versions:
                assert v.id is not None
                actual = load_content(s, v.id).content_hash()
                if actual != v.content_hash:
                    problems.append(f"constitution_version id {v.id} (v{v.number}): its "
                                    "principles or few-shots were altered after saving")
                if recorded.get(v.id) != v.content_hash:
                    problems.append(f"constitution_version id {v.id} (v{v.number}): its content "
                                    "hash differs from the one its audit event recorded")
        return VerifyReport(not problems, chain.checked, len(versions), chain.head_hash, problems)
