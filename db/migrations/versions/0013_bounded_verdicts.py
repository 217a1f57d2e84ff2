"""bounded verdicts

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-28 10:00:00.000000

How many of a verdict's scored variants had a choice missing from the server's top-k, so its
probability is a bounded estimate rather than exact (issue 11). Reports count them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column('verdict', sa.Column('bounded', sa.Integer(), nullable=False,
                                       server_default=sa.text('0')))


def downgrade() -> None:
    with op.batch_alter_table('verdict') as batch:
        batch.drop_column('bounded')
