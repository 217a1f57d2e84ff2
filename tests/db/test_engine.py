from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

from db import migrate
from db.engine import Database, sqlite_url
from tests.databases import on_postgres


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    database = Database(database_url)
    migrate.upgrade(database)
    yield database
    database.dispose()


def test_sqlite_creates_the_folder_of_its_file(tmp_path: Path) -> None:
    database = Database(sqlite_url(tmp_path / "sub" / "studio.db"))
    migrate.upgrade(database)
    database.dispose()
    assert (tmp_path / "sub" / "studio.db").is_file()


@pytest.mark.skipif(on_postgres(), reason="SQLite connection settings")
def test_sqlite_pragmas_are_set_on_every_connection(db: Database) -> None:
    with db.read() as s:
        assert s.connection().execute(text("PRAGMA journal_mode")).one()[0] == "wal"
        assert s.connection().execute(text("PRAGMA foreign_keys")).one()[0] == 1
        assert s.connection().execute(text("PRAGMA busy_timeout")).one()[0] >= 10_000
        assert s.connection().execute(text("PRAGMA cache_size")).one()[0] == -32_768
        assert s.connection().execute(text("PRAGMA wal_autocheckpoint")).one()[0] == 10_000


def test_foreign_keys_are_enforced(db: Database) -> None:
    with pytest.raises(IntegrityError), db.write() as s:
        s.connection().execute(text(
            "INSERT INTO principle (version_id, position, key, title, critique_request, "
            "revision_request, choice_instruction, tags, enabled) "
            "VALUES (999, 0, 'k', 't', 'c', 'r', 'x', '[]', true)"))


def test_write_rolls_back_when_the_block_raises(db: Database) -> None:
    with pytest.raises(RuntimeError), db.write() as s:
        s.connection().execute(text(
            "INSERT INTO constitution (name, description, created_by, created_at) "
            "VALUES ('x', '', 'me', '2026-01-01 00:00:00')"))
        raise RuntimeError("boom")
    with db.read() as s:
        assert s.connection().execute(text("SELECT count(*) FROM constitution")).one()[0] == 0


def test_writers_queue_instead_of_failing(db: Database) -> None:
    """Two threads writing at once both succeed: BEGIN IMMEDIATE + busy_timeout serialise them."""
    errors: list[Exception] = []

    def insert(name: str) -> None:
        try:
            for i in range(20):
                with db.write() as s:
                    s.connection().execute(text(
                        "INSERT INTO constitution (name, description, created_by, created_at) "
                        "VALUES (:n, '', 'me', '2026-01-01 00:00:00')"), {"n": f"{name}{i}"})
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=insert, args=(n,)) for n in ("a", "b", "c")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with db.read() as s:
        assert s.connection().execute(text("SELECT count(*) FROM constitution")).one()[0] == 60


def test_append_only_tables_refuse_update_and_delete(db: Database) -> None:
    with db.write() as s:
        s.connection().execute(text(
            "INSERT INTO constitution (name, description, created_by, created_at) "
            "VALUES ('c', '', 'me', '2026-01-01 00:00:00')"))
        s.connection().execute(text(
            "INSERT INTO constitution_version (constitution_id, number, content_hash, "
            "author, message, created_at) VALUES (1, 1, 'h', 'me', '', '2026-01-01 00:00:00')"))
    for statement in ("UPDATE constitution_version SET message = 'changed'",
                      "DELETE FROM constitution_version"):
        with pytest.raises(IntegrityError, match="append-only"), db.write() as s:
            s.connection().execute(text(statement))


def test_migrations_go_down_and_up_again(db: Database) -> None:
    assert migrate.current_revision(db) == migrate.head_revision(db)
    migrate.downgrade(db, "base")
    assert migrate.current_revision(db) is None
    with db.read() as s, pytest.raises((OperationalError, ProgrammingError)):
        s.connection().execute(text("SELECT * FROM constitution"))
    migrate.upgrade(db)
    assert migrate.current_revision(db) == migrate.head_revision(db)
