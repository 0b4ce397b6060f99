"""accounts: an index on changed_at; score_history: an index on day. The match stage finds the accounts changed
since a time (those to read again after reading every account ahead, those whose people to rematch) without
reading every account, and the score stage deletes the snapshots past their keeping without reading every one:
two years of daily snapshots of an L org's 138,000 accounts are a hundred million rows

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""
from alembic import op

revision = '0013'
down_revision = '0012'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_accounts_changed_at', 'accounts', ['changed_at'], unique=False)
    op.create_index('ix_score_history_day', 'score_history', ['day'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_score_history_day', table_name='score_history')
    op.drop_index('ix_accounts_changed_at', table_name='accounts')
