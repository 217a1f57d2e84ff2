"""verdict counts

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-28 12:50:00.000000

Issue 15, the disagreement browser at 1,000,000 verdicts:

* ``verdict_count``: how many verdicts each run has per (principle, human label, disagrees,
  confidence bucket of width 0.01), kept by an insert trigger on ``verdict`` (every writer,
  ORM, Core or plain SQL, counts alike; the verdict table is append-only, so counts only grow)
  and backfilled here. A page's match count is then the sum of the whole buckets inside its
  confidence range plus an index count of the two partial edges, instead of counting up to a
  million index entries (db/evaluation_repo.py, ``count_matches``).
* ``ix_verdict_principle_human_page``: a principle and a human label filtered together read
  one index range (before, one of the two was checked row by row in the table).

A bucket is ``floor(confidence * 100)`` corrected against the float edges ``k / 100`` (so a
bucket holds exactly the rows with ``k/100 <= confidence < (k+1)/100``, as the edge counts
compare them); 100 holds confidence 1.0, 101 anything above, -1 none. Missing values are
stored as '' (principle), -1 (human label) and -1 (disagrees): a primary key has no NULLs.
"""

# The SQL here is built from fixed column names and expressions, never from user text.
# ruff: noqa: S608

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = "evaluation_id, principle_key, human_label, disagrees, bucket"


def _bucket(c: str, dialect: str) -> str:
    """The bucket of confidence ``c`` (an SQL expression), as db/evaluation_repo.py reads it."""
    if dialect == "postgresql":
        b0, k = f"floor({c} * 100)::integer", "::float8"
    else:
        b0, k = f"CAST({c} * 100 AS INTEGER)", ""
    return (f"CASE WHEN {c} IS NULL THEN -1 WHEN {c} > 1.0 THEN 101 "
            f"WHEN {c} >= ({b0} + 1){k} / 100.0{k} THEN {b0} + 1 "
            f"WHEN {c} < ({b0}){k} / 100.0{k} THEN {b0} - 1 ELSE {b0} END")


def _values(row: str, dialect: str) -> str:
    disagrees = (f"CASE WHEN {row}.disagrees IS NULL THEN -1 WHEN {row}.disagrees THEN 1 "
                 "ELSE 0 END")
    return (f"{row}.evaluation_id, coalesce({row}.principle_key, ''), "
            f"coalesce({row}.human_label, -1), {disagrees}, "
            f"{_bucket(f'{row}.confidence', dialect)}")


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    op.create_table(
        'verdict_count',
        sa.Column('evaluation_id', sa.Integer(), nullable=False),
        sa.Column('principle_key', sa.String(length=64), nullable=False),
        sa.Column('human_label', sa.Float(), nullable=False),
        sa.Column('disagrees', sa.Integer(), nullable=False),
        sa.Column('bucket', sa.Integer(), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint('evaluation_id', 'principle_key', 'human_label', 'disagrees',
                                'bucket'),
    )
    op.create_index('ix_verdict_principle_human_page', 'verdict',
                    ['evaluation_id', 'principle_key', 'human_label', 'disagrees',
                     'confidence', 'item_id'], unique=False)
    op.execute(f"INSERT INTO verdict_count ({_COLUMNS}, n) SELECT {_values('v', dialect)}, "
               "count(*) FROM verdict v GROUP BY 1, 2, 3, 4, 5")
    upsert = (f"INSERT INTO verdict_count ({_COLUMNS}, n) VALUES ({_values('NEW', dialect)}, 1) "
              f"ON CONFLICT ({_COLUMNS}) DO UPDATE SET n = verdict_count.n + 1")
    if dialect == "postgresql":
        op.execute("CREATE FUNCTION cstudio_verdict_count() RETURNS trigger LANGUAGE plpgsql "
                   f"AS $$ BEGIN {upsert}; RETURN NULL; END $$")
        op.execute("CREATE TRIGGER verdict_count_insert AFTER INSERT ON verdict "
                   "FOR EACH ROW EXECUTE FUNCTION cstudio_verdict_count()")
    else:
        op.execute(f"CREATE TRIGGER verdict_count_insert AFTER INSERT ON verdict BEGIN {upsert}; "
                   "END")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS verdict_count_insert ON verdict")
        op.execute("DROP FUNCTION IF EXISTS cstudio_verdict_count()")
    else:
        op.execute("DROP TRIGGER IF EXISTS verdict_count_insert")
    op.drop_index('ix_verdict_principle_human_page', table_name='verdict')
    op.drop_table('verdict_count')
