"""training data

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 18:25:00.000000

Datasets produced by training stages (SL-CAI samples linked to their critiques, AI-labelled
preference pairs linked to their verdicts) (issue 5). Samples are append-only.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.ddl import create_append_only, drop_append_only

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("sl_cai_sample", "ai_pair_sample")


def upgrade() -> None:
    op.create_table('training_dataset',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('job_id', sa.Integer(), nullable=True),
    sa.Column('constitution_version_id', sa.Integer(), nullable=True),
    sa.Column('model', sa.String(length=300), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('source', sa.String(length=500), nullable=False),
    sa.Column('source_sha256', sa.String(length=64), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['job_id'], ['job.id'], ),
    sa.ForeignKeyConstraint(['constitution_version_id'], ['constitution_version.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('training_dataset', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_training_dataset_kind'), ['kind'], unique=False)
        batch_op.create_index(batch_op.f('ix_training_dataset_job_id'), ['job_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_training_dataset_constitution_version_id'),
                              ['constitution_version_id'], unique=False)

    op.create_table('sl_cai_sample',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('revision', sa.Text(), nullable=False),
    sa.Column('chain_id', sa.String(length=40), nullable=False),
    sa.Column('response_record_id', sa.Integer(), nullable=True),
    sa.Column('final_record_id', sa.Integer(), nullable=True),
    sa.Column('record_ids', sa.JSON(), nullable=False),
    sa.Column('principle_keys', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['training_dataset.id'], ),
    sa.ForeignKeyConstraint(['response_record_id'], ['critique_log.id'], ),
    sa.ForeignKeyConstraint(['final_record_id'], ['critique_log.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset_id', 'position', name='uq_sl_cai_position')
    )
    with op.batch_alter_table('sl_cai_sample', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_sl_cai_sample_dataset_id'), ['dataset_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_sl_cai_sample_chain_id'), ['chain_id'], unique=False)

    op.create_table('ai_pair_sample',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('dataset_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('prompt', sa.Text(), nullable=False),
    sa.Column('response_a', sa.Text(), nullable=False),
    sa.Column('response_b', sa.Text(), nullable=False),
    sa.Column('p_a', sa.Float(), nullable=False),
    sa.Column('verdict_chain_id', sa.String(length=40), nullable=False),
    sa.Column('response_record_ids', sa.JSON(), nullable=False),
    sa.Column('verdict_record_ids', sa.JSON(), nullable=False),
    sa.Column('principle_keys', sa.JSON(), nullable=False),
    sa.Column('variants', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['dataset_id'], ['training_dataset.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('dataset_id', 'position', name='uq_ai_pair_position')
    )
    with op.batch_alter_table('ai_pair_sample', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ai_pair_sample_dataset_id'), ['dataset_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_ai_pair_sample_verdict_chain_id'),
                              ['verdict_chain_id'], unique=False)

    create_append_only(*APPEND_ONLY)


def downgrade() -> None:
    drop_append_only(*APPEND_ONLY)
    with op.batch_alter_table('ai_pair_sample', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ai_pair_sample_verdict_chain_id'))
        batch_op.drop_index(batch_op.f('ix_ai_pair_sample_dataset_id'))
    op.drop_table('ai_pair_sample')
    with op.batch_alter_table('sl_cai_sample', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_sl_cai_sample_chain_id'))
        batch_op.drop_index(batch_op.f('ix_sl_cai_sample_dataset_id'))
    op.drop_table('sl_cai_sample')
    with op.batch_alter_table('training_dataset', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_training_dataset_constitution_version_id'))
        batch_op.drop_index(batch_op.f('ix_training_dataset_job_id'))
        batch_op.drop_index(batch_op.f('ix_training_dataset_kind'))
    op.drop_table('training_dataset')
