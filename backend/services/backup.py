"""Backups of the whole store and restoring them.

* SQLite: SQLite's online backup API (``sqlite3.Connection.backup``) copies a consistent
  snapshot while the studio keeps running; a restore copies the backup into a scratch file,
  migrates and verifies it there, and only then copies it over the live database (again with
  the backup API, so open connections see the new content and no stale WAL is left behind).
* PostgreSQL: ``pg_dump -Fc`` (custom format) and ``pg_restore``. The dump is checked with
  ``pg_restore --list`` before anything is dropped; the restored store is verified afterwards.

A restore refuses to overwrite a store that holds data unless ``force`` is given, and then
first saves the current store to ``<data dir>/backups/pre-restore-<time>``. After restoring,
the store is migrated to the newest schema and its audit chain, version hashes, critique-log
hashes and record seals are verified (``AuditService.verify``).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from sqlalchemy import inspect, text
from sqlalchemy.engine import make_url

from backend.access import Action, Principal, require
from backend.errors import IntegrityError, NotFoundError, StudioError, ValidationError
from backend.services.audit import AuditService
from db import migrate
from db.engine import Database

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
# Tables that say nothing about whether a store holds user data.
_BOOKKEEPING = ("alembic_version", "sqlite_", "critique_fts")

Kind = Literal["sqlite", "postgresql"]


class BackupError(StudioError):
    """A backup or restore could not be done; the message says why and what to do."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    kind: Kind
    size_bytes: int
    schema_revision: str | None


@dataclass(frozen=True)
class RestoreInfo:
    path: Path
    kind: Kind
    schema_revision: str | None
    events_checked: int
    versions_checked: int
    records_checked: int
    audit_head: str
    saved_previous: Path | None = None
    problems: list[str] = field(default_factory=list)


def backup_kind(path: Path) -> Kind:
    """Which store a backup file is for, from its first bytes."""
    with path.open("rb") as f:
        head = f.read(16)
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise ValidationError(f"{path} is neither a SQLite database nor a pg_dump custom-format "
                          "file; give a file written by `cstudio backup`.")


def store_has_data(db: Database) -> bool:
    """True when any table other than bookkeeping (schema version, search index) has a row."""
    with db.engine.connect() as conn:
        names = [n for n in inspect(conn).get_table_names() if not n.startswith(_BOOKKEEPING)]
        for name in names:
            quoted = conn.dialect.identifier_preparer.quote(name)
            # the name comes from the schema itself, quoted by the dialect
            probe = text(f"SELECT 1 FROM {quoted} LIMIT 1")  # noqa: S608
            if conn.execute(probe).first() is not None:
                return True
    return False


def _kind(db: Database) -> Kind:
    if db.dialect == "sqlite":
        return "sqlite"
    if db.dialect == "postgresql":
        return "postgresql"
    raise BackupError(f"Backups support SQLite and PostgreSQL stores, not {db.dialect}.")


class BackupService:
    def __init__(self, db: Database, data_dir: Path) -> None:
        self._db = db
        self._data_dir = data_dir

    # ---- backup ----------------------------------------------------------------------------

    def backup(self, path: Path, *, actor: Principal) -> BackupInfo:
        """Write a consistent copy of the whole store to ``path`` (replaced if it exists)."""
        require(actor, Action.BACKUP)
        return self._backup(path)

    def _backup(self, path: Path) -> BackupInfo:
        kind = _kind(self._db)
        if path.is_dir():
            raise ValidationError(f"{path} is a folder; give a file name for the backup.")
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.partial")
        tmp.unlink(missing_ok=True)
        try:
            if kind == "sqlite":
                self._sqlite_backup(tmp)
            else:
                _run(["pg_dump", "--format=custom", "--no-owner", "--file", str(tmp)],
                     self._db.url, "pg_dump")
            os.replace(tmp, path)  # a half-written backup never carries the final name
        finally:
            tmp.unlink(missing_ok=True)
        return BackupInfo(path, kind, path.stat().st_size, migrate.current_revision(self._db))

    def _sqlite_backup(self, dest_path: Path) -> None:
        raw = self._db.engine.raw_connection()
        try:
            src = raw.driver_connection
            assert isinstance(src, sqlite3.Connection)
            dest = sqlite3.connect(dest_path)
            try:
                src.backup(dest)  # one step: a consistent snapshot even while others write
                dest.execute("PRAGMA journal_mode = DELETE")  # one self-contained file
            finally:
                dest.close()
        finally:
            raw.close()

    # ---- restore ---------------------------------------------------------------------------

    def restore(self, path: Path, *, actor: Principal, force: bool = False) -> RestoreInfo:
        """Replace the store with the backup at ``path``; see the module docstring."""
        require(actor, Action.BACKUP)
        if not path.is_file():
            raise NotFoundError(f"Backup file {path} does not exist.")
        kind = _kind(self._db)
        found = backup_kind(path)
        if found != kind:
            raise ValidationError(f"{path} is a {found} backup but the store is {kind}; restore "
                                  "it into a store of the same kind (--database-url).")
        saved_path: Path | None = None
        if store_has_data(self._db):
            if not force:
                raise BackupError("The store already holds data; restoring would replace it. "
                                  "Pass --force to replace it (the current store is saved to "
                                  f"{self._data_dir / 'backups'} first).")
            stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            suffix = ".db" if kind == "sqlite" else ".pgdump"
            saved_path = self._backup(
                self._data_dir / "backups" / f"pre-restore-{stamp}{suffix}").path
        # the anchors (db/anchor.py) describe the replaced store: keep them aside, start anew
        anchors = self._data_dir / "anchors.jsonl"
        if anchors.is_file():
            moved = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
            anchors.rename(self._data_dir / f"anchors-before-restore-{moved}.jsonl")
        report = self._sqlite_restore(path) if kind == "sqlite" else self._pg_restore(path)
        info = RestoreInfo(path, kind, migrate.current_revision(self._db), report.events_checked,
                           report.versions_checked, report.records_checked, report.head_hash,
                           saved_path, list(report.problems))
        if report.problems:
            raise IntegrityError(
                f"Restored {path}, but verification failed: {report.problems[0]} "
                f"({len(report.problems)} problem(s)). The backup was altered or damaged; "
                + (f"the previous store was saved to {saved_path}." if saved_path else
                   "restore an older backup."))
        return info

    def _sqlite_restore(self, path: Path) -> _Verified:
        with tempfile.TemporaryDirectory(prefix="cstudio-restore-") as tmpdir:
            scratch = Path(tmpdir) / "restore.db"
            shutil.copyfile(path, scratch)
            check = sqlite3.connect(scratch)
            try:
                ok = check.execute("PRAGMA integrity_check").fetchone()
            except sqlite3.DatabaseError as exc:
                raise ValidationError(f"{path} is not a readable SQLite database: {exc}") from exc
            finally:
                check.close()
            if not ok or ok[0] != "ok":
                raise ValidationError(f"{path} failed SQLite's integrity check ({ok}); it is "
                                      "damaged. Restore another backup.")
            staged = Database(f"sqlite:///{scratch}")
            try:
                migrate.upgrade(staged)
                report = _verify(staged)
                if report.problems:  # the live store is left untouched
                    raise IntegrityError(
                        f"Nothing was restored: {path} failed verification: "
                        f"{report.problems[0]} ({len(report.problems)} problem(s)). The backup "
                        "was altered or damaged; restore another one.")
                raw_src = staged.engine.raw_connection()
                raw_dest = self._db.engine.raw_connection()
                try:
                    src, dest = raw_src.driver_connection, raw_dest.driver_connection
                    assert isinstance(src, sqlite3.Connection)
                    assert isinstance(dest, sqlite3.Connection)
                    src.backup(dest)
                finally:
                    raw_dest.close()
                    raw_src.close()
            finally:
                staged.dispose()
        self._db.engine.dispose()
        return _verify(self._db)

    def _pg_restore(self, path: Path) -> _Verified:
        _run(["pg_restore", "--list", str(path)], None, "pg_restore --list")  # readable?
        self._db.engine.dispose()
        with self._db.engine.begin() as conn:
            # Everything the studio keeps lives in the public schema (tables, triggers,
            # functions); the store's owner may drop and recreate it.
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        self._db.engine.dispose()
        _run(["pg_restore", "--no-owner", "--exit-on-error", "--single-transaction",
              "--dbname", _libpq_dbname(self._db.url), str(path)], self._db.url, "pg_restore")
        self._db.engine.dispose()
        migrate.upgrade(self._db)
        return _verify(self._db)


@dataclass(frozen=True)
class _Verified:
    events_checked: int
    versions_checked: int
    records_checked: int
    head_hash: str
    problems: list[str]


def _verify(db: Database) -> _Verified:
    report = AuditService(db).verify()
    return _Verified(report.events_checked, report.versions_checked, report.records_checked,
                     report.head_hash, list(report.problems))


def _libpq_dbname(url: str) -> str:
    """The database name only: host, user and password travel in PG* variables, so the
    password never appears on a command line."""
    return make_url(url).database or ""


def _pg_env(url: str | None) -> dict[str, str]:
    env = dict(os.environ)
    if url is None:
        return env
    u = make_url(url)
    for var, value in (("PGHOST", u.host), ("PGPORT", u.port), ("PGUSER", u.username),
                       ("PGPASSWORD", u.password), ("PGDATABASE", u.database)):
        if value is not None:
            env[var] = str(value)
    return env


def _run(argv: list[str], url: str | None, what: str) -> None:
    if shutil.which(argv[0]) is None:
        raise BackupError(f"{argv[0]} was not found. Install PostgreSQL's client programs "
                          "(Debian: apt-get install postgresql-client) in a version at least "
                          "as new as the server.")
    done = subprocess.run(argv, env=_pg_env(url), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BackupError(f"{what} failed (exit {done.returncode}): "
                          f"{done.stderr.strip()[-2000:]}")
