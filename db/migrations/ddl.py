"""DDL the migrations share: the guard triggers that make a table append-only.

SQLite gets two triggers per table (``<table>_no_update``, ``<table>_no_delete``) that abort
with ``<table> is append-only``; PostgreSQL one trigger (``<table>_append_only``) calling
``cstudio_append_only()``, the function migration 0001 creates. Both refuse UPDATE and DELETE
with an IntegrityError.

Migrations are history: these functions must keep emitting exactly these statements. A changed
guard goes into a new migration with new DDL, never into an edit here.
"""

from __future__ import annotations

from alembic import op


def create_append_only(*tables: str) -> None:
    dialect = op.get_bind().dialect.name
    for table in tables:
        if dialect == "sqlite":
            for verb in ("UPDATE", "DELETE"):
                op.execute(f"CREATE TRIGGER {table}_no_{verb.lower()} BEFORE {verb} ON {table} "
                           f"BEGIN SELECT RAISE(ABORT, '{table} is append-only'); END")
        elif dialect == "postgresql":
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION cstudio_append_only()")


def drop_append_only(*tables: str) -> None:
    dialect = op.get_bind().dialect.name
    for table in tables:
        if dialect == "sqlite":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_update")
            op.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete")
        elif dialect == "postgresql":
            op.execute(f"DROP TRIGGER IF EXISTS {table}_append_only ON {table}")
