"""match_features: each account's matching features, kept between match stages

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Reading every account's features again took a large org's match stage about 14 CPU s on every run. Starts
    # empty: the first match stage after the upgrade computes and keeps them (matching.feature_cache).
    op.create_table(
        'match_features',
        sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
        sa.Column('digest', sa.String(length=32), nullable=False),
        sa.Column('features', sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('account_id'),
    )


def downgrade() -> None:
    op.drop_table('match_features')
