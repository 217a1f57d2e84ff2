"""prompt sets and session keys

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-28 10:00:00.000000

Issue 13: prompt sets become stored objects (``prompt_set``, ``prompt_set_item``), and every
user row gets a ``session_key`` that changes with the password, role or enabled state (a
signed-in session ends when it differs). Plain SQLAlchemy types: SQLite and PostgreSQL.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('prompt_set',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('source_format', sa.String(length=40), nullable=False),
    sa.Column('source_name', sa.String(length=300), nullable=False),
    sa.Column('source_sha256', sa.String(length=64), nullable=False),
    sa.Column('prompt_count', sa.Integer(), nullable=False),
    sa.Column('builtin', sa.Boolean(), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('prompt_set', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prompt_set_name'), ['name'], unique=True)
    op.create_table('prompt_set_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('prompt_set_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('tags', sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(['prompt_set_id'], ['prompt_set.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('prompt_set_id', 'position', name='uq_prompt_set_item_position')
    )
    with op.batch_alter_table('prompt_set_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_prompt_set_item_prompt_set_id'), ['prompt_set_id'],
                              unique=False)
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.add_column(sa.Column('session_key', sa.String(length=64), nullable=False,
                                      server_default=''))


def downgrade() -> None:
    with op.batch_alter_table('user_account', schema=None) as batch_op:
        batch_op.drop_column('session_key')
    with op.batch_alter_table('prompt_set_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prompt_set_item_prompt_set_id'))
    op.drop_table('prompt_set_item')
    with op.batch_alter_table('prompt_set', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_prompt_set_name'))
    op.drop_table('prompt_set')
