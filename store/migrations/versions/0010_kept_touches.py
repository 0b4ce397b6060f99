"""kept_touches: the score stage's copy of every touch as the columns it reads, so that an incremental
run reads the touches changed since rather than every touch

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'kept_touches',
        sa.Column('part', sa.Integer(), autoincrement=False, nullable=False),
        sa.Column('header', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                  nullable=True),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('part', name=op.f('pk_kept_touches')),
    )


def downgrade() -> None:
    op.drop_table('kept_touches')
