"""Chain heads anchored outside the database (issue 13 point 4).

The audit chain and the seal chain prove that nothing *inside* them changed, but someone who
can write the database can delete their last rows, or recompute every hash after an edit, and
both chains still verify. So every write transaction that adds audit events or sealed rows
also:

* seals the rows it inserted into the sealed tables, in the same transaction (only writing
  services seal; ``verify`` never does), and
* after the commit appends the new heads — the newest audit event (id, hash) and the newest
  seal (id, hash, and which row it seals) — as one line of ``anchors.jsonl`` in the data
  directory, with an HMAC-SHA256 under a key kept in ``anchor.key`` (mode 0600, created on
  first use; never in the database or its backups).

``check`` compares every anchored head with the database: a head that is gone names the first
missing row (truncation), a head whose hash differs names the first altered row (a chain
recomputed after an edit). A line whose MAC is wrong is reported too (a forged anchor).
Someone who can also edit files in the data directory can remove anchor lines: copy
``anchors.jsonl`` elsewhere (or ship its last line with each evidence export) for that case.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Connection
from sqlmodel import Session

from db.engine import Database

KEY_FILE = "anchor.key"
LOG_FILE = "anchors.jsonl"
_INSERT = re.compile(r'^\s*INSERT\s+INTO\s+"?(\w+)"?', re.IGNORECASE)
log = logging.getLogger(__name__)


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Heads:
    audit_id: int
    audit_hash: str
    seal_id: int
    seal_hash: str
    seal_row: str  # "table:id" the newest seal covers ("" when none)


def current_heads(session: Session) -> Heads:
    a = session.execute(text("SELECT id, hash FROM audit_event ORDER BY id DESC LIMIT 1")
                        ).first()
    r = session.execute(text("SELECT id, hash, table_name, row_id FROM record_seal "
                             "ORDER BY id DESC LIMIT 1")).first()
    return Heads(int(a[0]) if a else 0, str(a[1]) if a else "",
                 int(r[0]) if r else 0, str(r[1]) if r else "",
                 f"{r[2]}:{r[3]}" if r else "")


class Anchor:
    """The key and the anchor log of one data directory."""

    def __init__(self, data_dir: Path) -> None:
        self.key_path = data_dir / KEY_FILE
        self.log_path = data_dir / LOG_FILE
        self._key: bytes | None = None
        self._last: Heads | None = None
        self._lock = threading.Lock()

    def key(self) -> bytes:
        if self._key is None:
            self.key_path.parent.mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                self._key = bytes.fromhex(self.key_path.read_text("ascii").strip())
            else:
                new = secrets.token_bytes(32)
                with os.fdopen(fd, "w", encoding="ascii") as fh:
                    fh.write(new.hex() + "\n")
                self._key = new
        return self._key

    def _mac(self, body: dict[str, Any]) -> str:
        return hmac.new(self.key(), _canonical(body), hashlib.sha256).hexdigest()

    def record(self, heads: Heads) -> None:
        """Append the heads (once per change) with their MAC."""
        with self._lock:
            if heads == self._last or (heads.audit_id == 0 and heads.seal_id == 0):
                return
            body = {"at": datetime.now(UTC).isoformat(timespec="microseconds"),
                    "audit_id": heads.audit_id, "audit_hash": heads.audit_hash,
                    "seal_id": heads.seal_id, "seal_hash": heads.seal_hash,
                    "seal_row": heads.seal_row}
            line = json.dumps({**body, "mac": self._mac(body)}, sort_keys=True) + "\n"
            fd = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            try:
                os.write(fd, line.encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
            self._last = heads

    def lines(self) -> Iterator[tuple[int, dict[str, Any] | None]]:
        """(line number, anchor) for each line; None for a line whose MAC does not hold."""
        if not self.log_path.is_file():
            return
        with self.log_path.open(encoding="utf-8") as fh:
            for n, raw in enumerate(fh, start=1):
                try:
                    item = json.loads(raw)
                    mac = item.pop("mac")
                except (json.JSONDecodeError, KeyError, AttributeError):
                    yield n, None
                    continue
                ok = hmac.compare_digest(str(mac), self._mac(item))
                yield n, item if ok else None

    def latest(self) -> dict[str, Any] | None:
        """The newest valid anchor line, with its MAC (what an evidence export carries)."""
        found: dict[str, Any] | None = None
        for _, item in self.lines():
            if item is not None and (found is None or item["audit_id"] >= found["audit_id"]):
                found = item
        return None if found is None else {**found, "mac": self._mac(found)}

    def check(self, session: Session) -> tuple[list[str], int]:
        """(problems, anchors checked): every anchored head must still be in the database
        with the same hash. Problems name the first missing or altered row."""
        problems: list[str] = []
        audit = _hashes(session, "audit_event")
        seals = _hashes(session, "record_seal")
        bad_audit: tuple[int, str] | None = None
        bad_seal: tuple[int, str] | None = None
        checked = 0
        for n, item in self.lines():
            if item is None:
                problems.append(f"{LOG_FILE} line {n}: its MAC does not hold (the anchor was "
                                "forged or edited)")
                continue
            checked += 1
            aid, sid = int(item["audit_id"]), int(item["seal_id"])
            if aid and audit.get(aid) != item["audit_hash"]:
                issue = _audit_issue(aid, audit, item)
                if bad_audit is None or aid < bad_audit[0]:
                    bad_audit = (aid, issue)
            if sid and seals.get(sid) != item["seal_hash"]:
                issue = _seal_issue(sid, seals, item)
                if bad_seal is None or sid < bad_seal[0]:
                    bad_seal = (sid, issue)
        first = [found[1] for found in (bad_audit, bad_seal) if found is not None]
        return first + problems, checked


_HASH_QUERIES = {"audit_event": "SELECT id, hash FROM audit_event",
                 "record_seal": "SELECT id, hash FROM record_seal"}


def _hashes(session: Session, table: str) -> dict[int, str]:
    return {int(i): str(h) for i, h in session.execute(text(_HASH_QUERIES[table]))}


def _audit_issue(aid: int, audit: dict[int, str], item: dict[str, Any]) -> str:
    if aid not in audit:
        first = min([i for i in range(1, aid + 1) if i not in audit], default=aid)
        return (f"audit_event id {first}: missing; it was anchored at {item['at']} (events up "
                f"to id {aid}), so the log was truncated or rows were deleted")
    return (f"audit_event id {aid} (or an event before it): its hash differs from the one "
            f"anchored at {item['at']}; the chain was rewritten after an edit")


def _seal_issue(sid: int, seals: dict[int, str], item: dict[str, Any]) -> str:
    table, _, row = str(item.get("seal_row", "")).partition(":")
    what = f"{table} id {row}" if table else "a sealed row"
    if sid not in seals:
        return (f"{what}: its seal (record_seal id {sid}) is missing; it was anchored at "
                f"{item['at']}, so sealed rows and their seals were deleted")
    return (f"record_seal id {sid} (sealing {what}): its hash differs from the one anchored at "
            f"{item['at']}; the seal chain was rewritten")


def protect(db: Database, data_dir: Path, *, sealed_tables: tuple[str, ...]) -> Anchor:
    """Seal inserted rows of ``sealed_tables`` in each write transaction and anchor the heads
    after each commit that changed them."""
    from db.record_seal import KNOWN_ROWS, TRACK_ROWS, seal_new_rows

    anchor = Anchor(data_dir)
    anchor.key()
    wanted = set(sealed_tables) | {"audit_event"}

    @event.listens_for(db.write_engine, "begin")
    def _fresh(conn: Connection) -> None:
        conn.info.pop("cstudio_inserted", None)
        conn.info.pop(KNOWN_ROWS, None)  # row values noted by a transaction that rolled back
        conn.info[TRACK_ROWS] = True

    @event.listens_for(db.write_engine, "before_cursor_execute")
    def _note_insert(conn: Connection, cursor: Any, statement: str, params: Any,
                     context: Any, executemany: bool) -> None:
        match = _INSERT.match(statement)
        if match and match.group(1) in wanted:
            conn.info.setdefault("cstudio_inserted", set()).add(match.group(1))

    def before_commit(session: Session) -> bool:
        session.flush()  # ORM rows added but not flushed yet are inserted now
        info = session.connection().info
        touched = info.pop("cstudio_inserted", set())
        tables = [t for t in sealed_tables if t in touched]
        if tables:
            seal_new_rows(session, tables=tables)
        return bool(touched)

    def after_commit(session: Session) -> None:
        try:
            anchor.record(current_heads(session))
        except OSError as exc:  # the commit stands; the next write anchors again
            log.warning("could not append to %s: %s", anchor.log_path, exc)

    db.hooks = (before_commit, after_commit)
    return anchor
