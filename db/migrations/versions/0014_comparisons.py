"""comparisons

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-28 10:20:00.000000

Comparisons of policies under a constitution (issue 16): the run (status and progress change),
its responses, verdicts and human votes, and named aliases of constitution versions (all
append-only, like the critique log and the training samples).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from db.migrations.ddl import create_append_only, drop_append_only

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPEND_ONLY = ("comparison_response", "comparison_verdict", "comparison_vote",
               "constitution_alias")


def upgrade() -> None:
    op.create_table('comparison',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('constitution_version_id', sa.Integer(), nullable=False),
    sa.Column('policies', sa.JSON(), nullable=False),
    sa.Column('prompts', sa.JSON(), nullable=False),
    sa.Column('prompt_source', sa.String(length=500), nullable=False),
    sa.Column('prompt_sha256', sa.String(length=64), nullable=False),
    sa.Column('judge_kind', sa.String(length=40), nullable=False),
    sa.Column('judge_model', sa.String(length=300), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('done_count', sa.Integer(), nullable=False),
    sa.Column('total_count', sa.Integer(), nullable=False),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('created_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['constitution_version_id'], ['constitution_version.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('comparison', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_comparison_constitution_version_id'),
                              ['constitution_version_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_comparison_status'), ['status'], unique=False)

    op.create_table('comparison_response',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('comparison_id', sa.Integer(), nullable=False),
    sa.Column('policy_index', sa.Integer(), nullable=False),
    sa.Column('prompt_index', sa.Integer(), nullable=False),
    sa.Column('response', sa.Text(), nullable=False),
    sa.Column('record_id', sa.Integer(), nullable=True),
    sa.Column('finish_reason', sa.String(length=20), nullable=False),
    sa.Column('reward_scores', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['comparison_id'], ['comparison.id'], ),
    sa.ForeignKeyConstraint(['record_id'], ['critique_log.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('comparison_id', 'policy_index', 'prompt_index',
                        name='uq_comparison_response')
    )
    with op.batch_alter_table('comparison_response', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_comparison_response_comparison_id'),
                              ['comparison_id'], unique=False)

    op.create_table('comparison_verdict',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('comparison_id', sa.Integer(), nullable=False),
    sa.Column('prompt_index', sa.Integer(), nullable=False),
    sa.Column('policy_a', sa.Integer(), nullable=False),
    sa.Column('policy_b', sa.Integer(), nullable=False),
    sa.Column('p_a', sa.Float(), nullable=False),
    sa.Column('chain_id', sa.String(length=40), nullable=False),
    sa.Column('per_principle', sa.JSON(), nullable=False),
    sa.Column('variants', sa.JSON(), nullable=False),
    sa.Column('record_ids', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['comparison_id'], ['comparison.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('comparison_id', 'prompt_index', 'policy_a', 'policy_b',
                        name='uq_comparison_verdict')
    )
    with op.batch_alter_table('comparison_verdict', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_comparison_verdict_comparison_id'),
                              ['comparison_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_comparison_verdict_chain_id'), ['chain_id'],
                              unique=False)

    op.create_table('comparison_vote',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('comparison_id', sa.Integer(), nullable=False),
    sa.Column('verdict_id', sa.Integer(), nullable=False),
    sa.Column('voter', sa.String(length=120), nullable=False),
    sa.Column('label', sa.Float(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['comparison_id'], ['comparison.id'], ),
    sa.ForeignKeyConstraint(['verdict_id'], ['comparison_verdict.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('comparison_vote', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_comparison_vote_comparison_id'), ['comparison_id'],
                              unique=False)
        batch_op.create_index(batch_op.f('ix_comparison_vote_verdict_id'), ['verdict_id'],
                              unique=False)

    op.create_table('constitution_alias',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('constitution_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=60), nullable=False),
    sa.Column('version_id', sa.Integer(), nullable=True),
    sa.Column('set_by', sa.String(length=120), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['constitution_id'], ['constitution.id'], ),
    sa.ForeignKeyConstraint(['version_id'], ['constitution_version.id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('constitution_alias', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_constitution_alias_constitution_id'),
                              ['constitution_id'], unique=False)

    create_append_only(*APPEND_ONLY)


def downgrade() -> None:
    drop_append_only(*APPEND_ONLY)
    with op.batch_alter_table('constitution_alias', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_constitution_alias_constitution_id'))
    op.drop_table('constitution_alias')
    with op.batch_alter_table('comparison_vote', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_comparison_vote_verdict_id'))
        batch_op.drop_index(batch_op.f('ix_comparison_vote_comparison_id'))
    op.drop_table('comparison_vote')
    with op.batch_alter_table('comparison_verdict', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_comparison_verdict_chain_id'))
        batch_op.drop_index(batch_op.f('ix_comparison_verdict_comparison_id'))
    op.drop_table('comparison_verdict')
    with op.batch_alter_table('comparison_response', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_comparison_response_comparison_id'))
    op.drop_table('comparison_response')
    with op.batch_alter_table('comparison', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_comparison_status'))
        batch_op.drop_index(batch_op.f('ix_comparison_constitution_version_id'))
    op.drop_table('comparison')
