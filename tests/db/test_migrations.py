"""Migrations keep what is stored: from every earlier revision to head with data in every table,
row counts and content hashes stay the same; every downgrade works and upgrades back; the
migrated schema matches the models. Revisions are read from the Alembic script directory, so a
new migration is covered without touching this file."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlmodel import Session, SQLModel, select

import db.audit_models
import db.base_models
import db.ci_models
import db.comparison_models
import db.constitution_models
import db.critique_log_models
import db.dataset_models
import db.evaluation_models
import db.job_models
import db.pipeline_models
import db.prompt_set_models
import db.settings_models
import db.training_models
import db.user_models  # noqa: F401  (register every table on SQLModel.metadata)
from db import migrate
from db.engine import Database
from tests.db.migration_data import data_tables, fingerprint, seed_every_table


def _revisions() -> list[str]:
    """Every revision, oldest first."""
    cfg = migrate.alembic_config(Database("sqlite://"))
    script = ScriptDirectory.from_config(cfg)
    return [r.revision for r in reversed(list(script.walk_revisions()))]


REVISIONS = _revisions()


def include_object(obj: object, name: str | None, type_: str, reflected: bool,
                   compare_to: object) -> bool:
    """As db/migrations/env.py: hand-written search tables are not the models' business."""
    return not (type_ == "table" and name is not None and name.startswith("critique_fts"))


@pytest.fixture
def empty_db(empty_database_url: str) -> Iterator[Database]:
    database = Database(empty_database_url)
    yield database
    database.dispose()


def test_revisions_form_one_line_from_base_to_head() -> None:
    assert REVISIONS[0] == "0001" and len(REVISIONS) == len(set(REVISIONS))
    assert migrate.head_revision(Database("sqlite://")) == REVISIONS[-1]


@pytest.mark.parametrize("start", REVISIONS[:-1])
def test_upgrade_from_each_revision_keeps_every_row(empty_db: Database, start: str) -> None:
    migrate.upgrade(empty_db, start)
    with empty_db.engine.begin() as conn:
        columns = seed_every_table(conn)
        before = fingerprint(conn, columns)
    assert before and all(count == 3 for count, _ in before.values())

    migrate.upgrade(empty_db)

    assert migrate.current_revision(empty_db) == REVISIONS[-1]
    with empty_db.engine.connect() as conn:
        after = fingerprint(conn, columns)
    assert after == before
    # ...and the models read every table as the code at head sees it.
    with Session(empty_db.engine) as session:
        for table in SQLModel.metadata.sorted_tables:
            if table.name in columns:
                session.execute(select(table)).all()


def test_every_downgrade_runs_and_upgrades_again(empty_db: Database) -> None:
    migrate.upgrade(empty_db)
    for target in [*reversed(REVISIONS[:-1]), "base"]:
        migrate.downgrade(empty_db, "-1")
        assert migrate.current_revision(empty_db) == (None if target == "base" else target)
    with empty_db.engine.connect() as conn:
        assert data_tables(conn) == []
    migrate.upgrade(empty_db)
    assert migrate.current_revision(empty_db) == REVISIONS[-1]


def test_migrated_schema_matches_the_models(empty_db: Database) -> None:
    migrate.upgrade(empty_db)
    with empty_db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_object": include_object})
        diff = compare_metadata(context, SQLModel.metadata)
    assert diff == [], f"models and migrations differ: {diff}"
