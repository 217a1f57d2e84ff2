"""Fresh databases for tests, on SQLite (a temp file) or on the PostgreSQL server named by
``CSTUDIO_TEST_DATABASE_URL`` (one new database per test, dropped afterwards).

On PostgreSQL a per-session template database migrated to head is copied for each test
(``CREATE DATABASE … TEMPLATE``), so a test pays for a file copy, not for the migrations.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url

ENV_VAR = "CSTUDIO_TEST_DATABASE_URL"


def server_url() -> str | None:
    """The PostgreSQL URL the tests run against, or None for SQLite."""
    return os.environ.get(ENV_VAR) or None


def on_postgres() -> bool:
    return server_url() is not None


def sqlite_file_url(tmp_path: Path, folder: str = "data") -> str:
    return f"sqlite:///{tmp_path / folder / 'studio.db'}"


def _admin_execute(sql: str) -> None:
    url = server_url()
    assert url is not None
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text(sql))
    finally:
        engine.dispose()


def _with_database(name: str) -> str:
    url = server_url()
    assert url is not None
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def create_database(template: str | None = None) -> str:
    """A new, uniquely named database on the test server; returns its URL."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"t_{worker}_{uuid.uuid4().hex[:12]}"
    _admin_execute(f'CREATE DATABASE "{name}"'
                   + (f' TEMPLATE "{template}"' if template else " TEMPLATE template0"))
    return _with_database(name)


def drop_database(url: str) -> None:
    name = make_url(url).database
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def create_migrated_template() -> str:
    """A database migrated to head, for copying; returns its name."""
    from db import migrate
    from db.engine import Database

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    name = f"tpl_{worker}_{uuid.uuid4().hex[:8]}"
    _admin_execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    database = Database(_with_database(name))
    try:
        migrate.upgrade(database)
    finally:
        database.dispose()
    return name


def drop_template(name: str) -> None:
    _admin_execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def drop_append_only_guard(conn: Connection, table: str) -> None:
    """What an attacker with database access does before editing rows: drop the triggers that
    make ``table`` append-only (their names differ between SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}"))
    else:
        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_update"))
        conn.execute(text(f"DROP TRIGGER IF EXISTS {table}_no_delete"))
