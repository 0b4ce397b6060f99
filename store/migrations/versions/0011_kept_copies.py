"""kept_copies: every copy the worker keeps between runs in one table, named (the score stage's touches,
the match stage's contacts), in place of kept_touches; the copy of the touches is taken again by the next
score stage

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-04
"""
import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def _header() -> sa.Column:
    return sa.Column('header', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
                     nullable=True)


def upgrade() -> None:
    op.create_table(
        'kept_copies',
        sa.Column('name', sa.String(length=32), nullable=False),
        sa.Column('part', sa.Integer(), autoincrement=False, nullable=False),
        _header(),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('name', 'part', name=op.f('pk_kept_copies')),
    )
    op.drop_table('kept_touches')


def downgrade() -> None:
    op.create_table(
        'kept_touches',
        sa.Column('part', sa.Integer(), autoincrement=False, nullable=False),
        _header(),
        sa.Column('data', sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint('part', name=op.f('pk_kept_touches')),
    )
    op.drop_table('kept_copies')
