"""adjudication of annotator disagreement

Revision ID: 0016
Revises: 0014
Create Date: 2026-11-28 12:50:00.000000

Rulings on compared pairs whose voters disagreed (issue 16 point 7): append-only, the newest
ruling per pair is its label.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.ddl import create_append_only, drop_append_only

revision: str = '0016'
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLE = "comparison_adjudication"


def upgrade() -> None:
    op.create_table(TABLE,
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('comparison_id', sa.Integer(), nullable=False),
    sa.Column('verdict_id', sa.Integer(), nullable=False),
    sa.Column('adjudicator', sa.String(length=120), nullable=False),
    sa.Column('label', sa.Float(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['comparison_id'], ['comparison.id'], ),
    sa.ForeignKeyConstraint(['verdict_id'], ['comparison_verdict.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_comparison_adjudication_comparison_id'),
                              ['comparison_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_comparison_adjudication_verdict_id'),
                              ['verdict_id'], unique=False)
    create_append_only(TABLE)


def downgrade() -> None:
    drop_append_only(TABLE)
    with op.batch_alter_table(TABLE, schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_comparison_adjudication_verdict_id'))
        batch_op.drop_index(batch_op.f('ix_comparison_adjudication_comparison_id'))
    op.drop_table(TABLE)
