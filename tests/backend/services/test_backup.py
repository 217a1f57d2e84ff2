"""Backups and restores on the store the suite runs against (SQLite, or PostgreSQL on the
PostgreSQL pass): what is restored equals what was backed up, and verification holds."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.access import Principal, Role, local_admin
from backend.cai.steplog import StepRecord
from backend.engines.base import EngineInfo
from backend.errors import IntegrityError, PermissionDeniedError, ValidationError
from backend.services.backup import BackupError, BackupService, store_has_data
from backend.services.container import Services
from db.engine import Database
from tests.databases import on_postgres
from tests.db.migration_data import data_tables, fingerprint

ADMIN = local_admin("ann")


def _write_some(services: Services) -> None:
    cid = services.constitutions.list_all()[0].id
    head = services.constitutions.head(cid)
    p = dataclasses.replace(head.content.principles[0], title="Edited for the backup")
    content = dataclasses.replace(head.content, principles=(p, *head.content.principles[1:]))
    services.constitutions.save(cid, head.info.id, content, "edit", actor=ADMIN)
    services.critique_log.logger("ann").log([StepRecord(
        kind="critique", chain_id="c1", prompt_sent="prompt ✓", output="out",
        engine=EngineInfo("tiny", "m", True), params={}, constitution_version_id=1)])


def _fingerprint(db: Database) -> dict[str, tuple[int, str]]:
    with db.engine.connect() as conn:
        columns = {t.name: [c.name for c in t.columns] for t in data_tables(conn)}
        return fingerprint(conn, columns)


@pytest.fixture
def other(empty_database_url: str, tmp_path: Path) -> Iterator[BackupService]:
    """A second, empty store of the same kind to restore into."""
    database = Database(empty_database_url)
    yield BackupService(database, tmp_path / "other-data")
    database.dispose()


def test_backup_then_restore_into_an_empty_store_gives_the_same_rows(
        services: Services, other: BackupService, tmp_path: Path) -> None:
    _write_some(services)
    backups = BackupService(services.db, services.settings.data_dir)
    info = backups.backup(tmp_path / "b" / "studio.backup", actor=ADMIN)
    assert info.path.is_file() and info.size_bytes > 0
    assert info.kind == ("postgresql" if on_postgres() else "sqlite")

    restored = other.restore(info.path, actor=ADMIN)

    assert restored.problems == [] and restored.events_checked == 3  # + built-in prompt set
    assert restored.versions_checked == 2 and restored.records_checked == 1
    assert restored.saved_previous is None
    assert _fingerprint(other._db) == _fingerprint(services.db)


def test_restore_refuses_a_store_with_data_unless_forced(
        services: Services, tmp_path: Path) -> None:
    backups = BackupService(services.db, services.settings.data_dir)
    path = backups.backup(tmp_path / "one.backup", actor=ADMIN).path
    _write_some(services)
    later = _fingerprint(services.db)
    with pytest.raises(BackupError, match="--force"):
        backups.restore(path, actor=ADMIN)
    assert _fingerprint(services.db) == later  # untouched

    restored = backups.restore(path, actor=ADMIN, force=True)

    assert restored.versions_checked == 1 and restored.records_checked == 0
    assert services.constitutions.head(services.constitutions.list_all()[0].id).info.number == 1
    assert restored.saved_previous is not None and restored.saved_previous.is_file()
    assert restored.saved_previous.parent == services.settings.data_dir / "backups"
    # the saved copy is itself a backup of the store as it was before the restore
    back = backups.restore(restored.saved_previous, actor=ADMIN, force=True)
    assert back.versions_checked == 2 and _fingerprint(services.db) == later


def test_only_admins_back_up_or_restore(services: Services, tmp_path: Path) -> None:
    backups = BackupService(services.db, services.settings.data_dir)
    auditor = Principal("eve", Role.AUDITOR)
    with pytest.raises(PermissionDeniedError):
        backups.backup(tmp_path / "x.backup", actor=auditor)
    with pytest.raises(PermissionDeniedError):
        backups.restore(tmp_path / "x.backup", actor=auditor, force=True)
    assert not (tmp_path / "x.backup").exists()


def test_a_file_that_is_not_a_backup_is_refused(other: BackupService, tmp_path: Path) -> None:
    junk = tmp_path / "junk.backup"
    junk.write_bytes(b"hello, not a database")
    with pytest.raises(ValidationError, match="neither"):
        other.restore(junk, actor=ADMIN)


@pytest.mark.skipif(on_postgres(), reason="edits the SQLite backup file directly")
def test_an_altered_sqlite_backup_is_refused_and_nothing_is_restored(
        services: Services, other: BackupService, tmp_path: Path) -> None:
    _write_some(services)
    path = BackupService(services.db, services.settings.data_dir).backup(
        tmp_path / "b.backup", actor=ADMIN).path
    conn = sqlite3.connect(path)
    conn.execute("DROP TRIGGER principle_no_update")
    conn.execute("UPDATE principle SET critique_request = 'sneaky' WHERE id = 1")
    conn.commit()
    conn.close()

    with pytest.raises(IntegrityError, match="Nothing was restored"):
        other.restore(path, actor=ADMIN)

    assert not store_has_data(other._db)


def test_sqlite_backup_is_consistent_while_another_connection_writes(
        services: Services, tmp_path: Path) -> None:
    if on_postgres():
        pytest.skip("SQLite online backup API")
    backups = BackupService(services.db, services.settings.data_dir)
    writer = sqlite3.connect(services.settings.data_dir / "studio.db")
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO constitution (name, description, created_by, created_at) "
                   "VALUES ('uncommitted', '', 'x', '2026-01-01 00:00:00')")
    path = backups.backup(tmp_path / "during.backup", actor=ADMIN).path  # not blocked
    writer.rollback()
    writer.close()
    copy = sqlite3.connect(path)
    names = [r[0] for r in copy.execute("SELECT name FROM constitution")]
    copy.close()
    assert "uncommitted" not in names and len(names) == 1
