"""throughput at scale

Revision ID: 0011
Revises: 0009
Create Date: 2026-11-28 09:40:00.000000

Issue 15 (and issue 11's unscorable items):

* ``verdict.confidence`` (max(p_a, 1 - p_a)), ``verdict.disagrees`` (the AI's side differs
  from the human label), ``verdict.principle_key`` (the principle, when a verdict has one) and
  ``verdict.human_label`` (a copy of the item's, which never changes), backfilled here, with the
  indexes ``ix_verdict_page``, ``ix_verdict_confidence``, ``ix_verdict_principle_page`` and
  ``ix_verdict_human_page``: the disagreement browser filters, sorts and pages in SQL. The
  verdict table is append-only, so its triggers are lifted for the backfill and put back.
* ``evaluation_unscorable``: items an engine could not score, with the engine's top tokens.
* SQLite: ``critique_fts`` is recreated with FTS5 prefix indexes (``prefix='2 3'``) and
  refilled from the critique log (a contentless table cannot be altered or rebuilt in place);
  the insert trigger is recreated with it. PostgreSQL needs no change: its GIN index over the
  tsvector already answers ``word:*`` prefix queries (partial match), and the minimum prefix
  length (db/audit_search_repo.py) bounds them on both.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0011'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FTS_TRIGGER = (
    "CREATE TRIGGER critique_fts_insert AFTER INSERT ON critique_log BEGIN "
    "INSERT INTO critique_fts(rowid, prompt_sent, output, meta) VALUES (new.id, "
    "new.prompt_sent, new.output, '0mkd' || new.kind || ' 0mpk' || "
    "hex(coalesce(new.principle_key, '')) || ' 0mcv' || "
    "coalesce(new.constitution_version_id, '')); END")
_FTS_BACKFILL = (
    "INSERT INTO critique_fts(rowid, prompt_sent, output, meta) SELECT id, prompt_sent, output, "
    "'0mkd' || kind || ' 0mpk' || hex(coalesce(principle_key, '')) || ' 0mcv' || "
    "coalesce(constitution_version_id, '') FROM critique_log")
_BACKFILL = (
    "UPDATE verdict SET confidence = CASE WHEN p_a >= 0.5 THEN p_a ELSE 1.0 - p_a END, "
    "human_label = (SELECT human_label FROM pair_item WHERE pair_item.id = verdict.item_id), "
    "disagrees = (SELECT CASE WHEN verdict.p_a > 0.5 THEN pair_item.human_label <> 1.0 "
    "WHEN verdict.p_a < 0.5 THEN pair_item.human_label <> 0.0 "
    "ELSE pair_item.human_label <> 0.5 END FROM pair_item WHERE pair_item.id = verdict.item_id)")

_BACKFILL_KEY = {  # the verdict's principle where it has exactly one (k = 1 runs)
    "sqlite": "UPDATE verdict SET principle_key = json_extract(principle_keys, '$[0]') "
              "WHERE json_array_length(principle_keys) = 1",
    "postgresql": "UPDATE verdict SET principle_key = principle_keys::json ->> 0 "
                  "WHERE CASE WHEN json_typeof(principle_keys::json) = 'array' "
                  "THEN json_array_length(principle_keys::json) = 1 ELSE false END",
}


def _verdict_triggers(create: bool) -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(f"DROP TRIGGER IF EXISTS verdict_no_{verb.lower()}")
            if create:
                op.execute(f"CREATE TRIGGER verdict_no_{verb.lower()} BEFORE {verb} ON verdict "
                           "BEGIN SELECT RAISE(ABORT, 'verdict is append-only'); END")
    elif dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS verdict_append_only ON verdict")
        if create:
            op.execute("CREATE TRIGGER verdict_append_only BEFORE UPDATE OR DELETE ON verdict "
                       "FOR EACH ROW EXECUTE FUNCTION cstudio_append_only()")


def _fts(prefix: str | None) -> None:
    if op.get_bind().dialect.name != "sqlite":
        return
    op.execute("DROP TRIGGER IF EXISTS critique_fts_insert")
    op.execute("DROP TABLE IF EXISTS critique_fts")
    option = f", prefix='{prefix}'" if prefix else ""
    op.execute("CREATE VIRTUAL TABLE critique_fts USING fts5(prompt_sent, output, meta, "
               f"content='', tokenize='unicode61'{option})")
    op.execute(_FTS_TRIGGER)
    op.execute(_FTS_BACKFILL)


def upgrade() -> None:
    _verdict_triggers(create=False)
    with op.batch_alter_table('verdict', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confidence', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('disagrees', sa.Boolean(), nullable=True))
        batch_op.add_column(sa.Column('principle_key', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('human_label', sa.Float(), nullable=True))
    op.execute(_BACKFILL)
    op.execute(_BACKFILL_KEY[op.get_bind().dialect.name])
    op.create_index('ix_verdict_page', 'verdict',
                    ['evaluation_id', 'disagrees', 'confidence', 'item_id'], unique=False)
    op.create_index('ix_verdict_confidence', 'verdict',
                    ['evaluation_id', 'confidence', 'item_id'], unique=False)
    op.create_index('ix_verdict_principle_page', 'verdict',
                    ['evaluation_id', 'principle_key', 'disagrees', 'confidence', 'item_id'],
                    unique=False)
    op.create_index('ix_verdict_human_page', 'verdict',
                    ['evaluation_id', 'human_label', 'disagrees', 'confidence', 'item_id'],
                    unique=False)
    _verdict_triggers(create=True)
    op.create_table(
        'evaluation_unscorable',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('evaluation_id', sa.Integer(), nullable=False),
        sa.Column('item_id', sa.Integer(), nullable=False),
        sa.Column('reason', sa.Text(), nullable=False),
        sa.Column('top_tokens', sa.JSON(), nullable=False),
        sa.Column('record_ids', sa.JSON(), nullable=False),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['evaluation_id'], ['evaluation.id'], ),
        sa.ForeignKeyConstraint(['item_id'], ['pair_item.id'], ),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('evaluation_id', 'item_id', name='uq_unscorable_item'),
    )
    op.create_index(op.f('ix_evaluation_unscorable_evaluation_id'), 'evaluation_unscorable',
                    ['evaluation_id'], unique=False)
    _fts("2 3")


def downgrade() -> None:
    _fts(None)
    op.drop_index(op.f('ix_evaluation_unscorable_evaluation_id'),
                  table_name='evaluation_unscorable')
    op.drop_table('evaluation_unscorable')
    _verdict_triggers(create=False)
    op.drop_index('ix_verdict_human_page', table_name='verdict')
    op.drop_index('ix_verdict_principle_page', table_name='verdict')
    op.drop_index('ix_verdict_confidence', table_name='verdict')
    op.drop_index('ix_verdict_page', table_name='verdict')
    with op.batch_alter_table('verdict', schema=None) as batch_op:
        batch_op.drop_column('human_label')
        batch_op.drop_column('principle_key')
        batch_op.drop_column('disagrees')
        batch_op.drop_column('confidence')
    _verdict_triggers(create=True)
