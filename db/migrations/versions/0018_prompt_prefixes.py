"""prompt prefixes stored once

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-28 23:10:00.000000

Issue 15 (throughput and storage): the text that a batch of critique-log prompts begins with
(the few-shot examples in front of every question of an agreement run, ~2 KB each) is stored
once in ``prompt_prefix``; a record keeps the rest of its prompt and ``prompt_prefix_id``.
Existing records keep their whole prompt (``prompt_prefix_id`` NULL). The FTS index keeps
indexing ``critique_log.prompt_sent``, i.e. the part after the prefix.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.ddl import create_append_only, drop_append_only

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "prompt_prefix"


def upgrade() -> None:
    op.create_table(TABLE,
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('sha256')
    )
    create_append_only(TABLE)
    # A plain ADD COLUMN (no table rebuild: the log keeps its triggers and FTS index); no
    # FOREIGN KEY clause, which SQLite could not drop in place on downgrade.
    op.add_column('critique_log', sa.Column('prompt_prefix_id', sa.Integer(), nullable=True))


def downgrade() -> None:
    # Records stored with a prefix get their whole prompt back before the column goes (the
    # log's append-only guard is lifted for that one UPDATE and put back as it was).
    drop_append_only("critique_log")
    op.execute("UPDATE critique_log SET prompt_sent = (SELECT p.text FROM prompt_prefix p "
               "WHERE p.id = critique_log.prompt_prefix_id) || prompt_sent "
               "WHERE prompt_prefix_id IS NOT NULL")
    create_append_only("critique_log")
    with op.batch_alter_table('critique_log', recreate="never") as batch_op:
        batch_op.drop_column('prompt_prefix_id')
    drop_append_only(TABLE)
    op.drop_table(TABLE)
