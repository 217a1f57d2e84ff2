"""audit search

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 18:20:00.000000

Full-text search over the critique log, flags and comments, and record seals (issue 6).

* SQLite: ``critique_fts``, an FTS5 index over ``critique_log`` (external content, so the text
  is stored once), filled by an insert trigger and backfilled here ('rebuild').
* PostgreSQL: ``critique_fts`` (record id, tsvector of prompt and output, 'simple' config) with a
  GIN index, filled by an insert trigger and backfilled here.
The name prefix keeps both out of Alembic autogenerate (see env.py). The critique log is
append-only, so insert triggers keep the index complete.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.ddl import create_append_only, drop_append_only

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("audit_flag", "audit_comment", "record_seal")
# The meta words, one token each ('0m' + kd<kind>, pk<hex of the key>, cv<version id>); must
# match db/audit_search_repo.py meta_token().
_SQLITE_TRIGGER = (
    "CREATE TRIGGER critique_fts_insert AFTER INSERT ON critique_log BEGIN "
    "INSERT INTO critique_fts(rowid, prompt_sent, output, meta) VALUES (new.id, "
    "new.prompt_sent, new.output, '0mkd' || new.kind || ' 0mpk' || "
    "hex(coalesce(new.principle_key, '')) || ' 0mcv' || "
    "coalesce(new.constitution_version_id, '')); END")
_SQLITE_BACKFILL = (
    "INSERT INTO critique_fts(rowid, prompt_sent, output, meta) SELECT id, prompt_sent, output, "
    "'0mkd' || kind || ' 0mpk' || hex(coalesce(principle_key, '')) || ' 0mcv' || "
    "coalesce(constitution_version_id, '') FROM critique_log")


def upgrade() -> None:
    op.create_table(
        'audit_flag',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=False),
        sa.Column('action', sa.String(length=10), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('actor', sa.String(length=120), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['record_id'], ['critique_log.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_flag_record', 'audit_flag', ['record_id', 'id'], unique=False)
    op.create_table(
        'audit_comment',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('record_id', sa.Integer(), nullable=False),
        sa.Column('body', sa.Text(), nullable=False),
        sa.Column('actor', sa.String(length=120), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['record_id'], ['critique_log.id'], ),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_audit_comment_record', 'audit_comment', ['record_id', 'id'],
                    unique=False)
    op.create_table(
        'record_seal',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('table_name', sa.String(length=40), nullable=False),
        sa.Column('row_id', sa.Integer(), nullable=False),
        sa.Column('row_hash', sa.String(length=64), nullable=False),
        sa.Column('prev_hash', sa.String(length=64), nullable=False),
        sa.Column('hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('hash'),
        sa.UniqueConstraint('table_name', 'row_id', name='uq_record_seal_row'),
    )

    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        # Contentless (the text stays in critique_log only). ``meta`` holds kind, principle
        # key and version as words, so common filters narrow the full-text match itself.
        op.execute("CREATE VIRTUAL TABLE critique_fts USING fts5(prompt_sent, output, meta, "
                   "content='', tokenize='unicode61')")
        op.execute(_SQLITE_TRIGGER)
        op.execute(_SQLITE_BACKFILL)
        create_append_only(*APPEND_ONLY)
    elif dialect == "postgresql":
        op.execute("CREATE TABLE critique_fts (id integer PRIMARY KEY REFERENCES critique_log(id), "
                   "document tsvector NOT NULL)")
        op.execute("CREATE INDEX critique_fts_document ON critique_fts USING gin (document)")
        op.execute(
            "CREATE FUNCTION critique_fts_insert() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN INSERT INTO critique_fts (id, document) VALUES (NEW.id, "
            "to_tsvector('simple', NEW.prompt_sent || ' ' || NEW.output)); RETURN NEW; END $$")
        op.execute("CREATE TRIGGER critique_fts_insert AFTER INSERT ON critique_log "
                   "FOR EACH ROW EXECUTE FUNCTION critique_fts_insert()")
        op.execute("INSERT INTO critique_fts (id, document) SELECT id, "
                   "to_tsvector('simple', prompt_sent || ' ' || output) FROM critique_log")
        create_append_only(*APPEND_ONLY)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        drop_append_only(*APPEND_ONLY)
        op.execute("DROP TRIGGER IF EXISTS critique_fts_insert")
        op.execute("DROP TABLE IF EXISTS critique_fts")
    elif dialect == "postgresql":
        drop_append_only(*APPEND_ONLY)
        op.execute("DROP TRIGGER IF EXISTS critique_fts_insert ON critique_log")
        op.execute("DROP FUNCTION IF EXISTS critique_fts_insert()")
        op.execute("DROP TABLE IF EXISTS critique_fts")
    op.drop_table('record_seal')
    op.drop_index('ix_audit_comment_record', table_name='audit_comment')
    op.drop_table('audit_comment')
    op.drop_index('ix_audit_flag_record', table_name='audit_flag')
    op.drop_table('audit_flag')
