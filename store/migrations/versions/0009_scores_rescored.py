"""scores: an index on (entity_kind, scored_at, entity_id), so that an incremental writeback finds
the records whose score changed instead of testing every record of each object

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""
from alembic import op

revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_scores_rescored', 'scores', ['entity_kind', 'scored_at', 'entity_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_scores_rescored', table_name='scores')
