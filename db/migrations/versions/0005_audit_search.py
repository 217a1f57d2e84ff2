"""audit search

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 18:20:00.000000

Full-text search over the critique log, flags and comments (issue 6).
"""

from collections.abc import Sequence

revision: str = '0005'
down_revision: str | None = '0004'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
