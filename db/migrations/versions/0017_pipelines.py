"""pipelines

Revision ID: 0017
Revises: 0014
Create Date: 2026-11-28 14:00:00.000000

Pipelines of chained training jobs (issue 17): the pipeline, its stages (jobs, in order) and
the dependencies between jobs that the worker's claim honours.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('pipeline',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('constitution_version_id', sa.Integer(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('comparison_id', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['constitution_version_id'], ['constitution_version.id'], ),
    sa.ForeignKeyConstraint(['comparison_id'], ['comparison.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('pipeline', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pipeline_constitution_version_id'),
                              ['constitution_version_id'], unique=False)

    op.create_table('pipeline_stage',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('pipeline_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('stage', sa.String(length=40), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['pipeline_id'], ['pipeline.id'], ),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('job_id'),
    sa.UniqueConstraint('pipeline_id', 'position', name='uq_pipeline_stage')
    )
    with op.batch_alter_table('pipeline_stage', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_pipeline_stage_pipeline_id'), ['pipeline_id'],
                              unique=False)

    op.create_table('job_dependency',
    sa.Column('job_id', sa.Integer(), nullable=False),
    sa.Column('depends_on_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], ),
    sa.ForeignKeyConstraint(['depends_on_id'], ['job.id'], ),
    sa.PrimaryKeyConstraint('job_id', 'depends_on_id')
    )
    with op.batch_alter_table('job_dependency', schema=None) as batch_op:
        batch_op.create_index('ix_job_dependency_depends_on', ['depends_on_id'], unique=False)


def downgrade() -> None:
    op.drop_table('job_dependency')
    op.drop_table('pipeline_stage')
    op.drop_table('pipeline')
