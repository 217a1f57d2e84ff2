"""Verifying that nothing stored was altered: the audit hash chain, version content hashes,
critique-log record hashes, and the seals of every append-only row (db/record_seal.py)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlmodel import select

from backend.services.constitutions import load_content
from db import constitution_repo as repo
from db import critique_log_repo
from db.anchor import Anchor
from db.audit_chain import verify_chain
from db.audit_models import AuditEvent
from db.engine import Database
from db.record_seal import seal_new_rows, verify_seals

VERSION_ACTIONS = ("constitution.create", "constitution.save", "constitution.revert")


@dataclass(frozen=True)
class VerifyReport:
    ok: bool
    events_checked: int
    versions_checked: int
    head_hash: str
    problems: list[str] = field(default_factory=list)
    records_checked: int = 0
    rows_checked: int = 0
    seal_head: str = ""
    unsealed: dict[str, int] = field(default_factory=dict)
    sealed_now: dict[str, int] = field(default_factory=dict)  # always empty: verify never seals
    anchors_checked: int = 0

    @property
    def first_broken(self) -> str | None:
        """The first broken link, named (None when everything holds)."""
        return self.problems[0] if self.problems else None


class AuditService:
    def __init__(self, db: Database, anchor: Anchor | None = None) -> None:
        self._db = db
        self._anchor = anchor

    def seal(self) -> dict[str, int]:
        """Seal the append-only rows written since the last seal; returns new seals per table.
        Writing services seal their own rows as they commit (db/anchor.py); this is for
        stores written before that, run deliberately (never by ``verify``)."""
        with self._db.write() as s:
            return seal_new_rows(s)

    def verify(self) -> VerifyReport:
        """Read-only: walk the chain, compare the chain and seal heads with those anchored
        outside the database, check every sealed row against its seal, recompute every
        version's content hash from its stored rows and compare it with the version row and
        with the hash its audit event recorded, then recheck every critique-log record's
        hash. Never seals anything."""
        with self._db.read() as s:
            chain = verify_chain(s)
            problems: list[str] = []
            if not chain.ok:
                problems.append(f"audit_event id {chain.broken_id}: {chain.reason}")
            anchors = 0
            if self._anchor is not None:
                found, anchors = self._anchor.check(s)
                problems.extend(found)
            seals = verify_seals(s)  # row-level first: it names the exact row
            problems.extend(seals.problems)
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
            records = 0
            for row in critique_log_repo.iter_records(s):
                records += 1
                if critique_log_repo.record_hash(row) != row.record_hash:
                    problems.append(f"critique_log id {row.id}: its contents do not match its "
                                    "record_hash (the record was altered)")
                    break
            s.expunge_all()
        return VerifyReport(not problems, chain.checked, len(versions), chain.head_hash, problems,
                            records_checked=records, rows_checked=seals.rows_checked,
                            seal_head=seals.head_hash, unsealed=seals.unsealed,
                            anchors_checked=anchors)
