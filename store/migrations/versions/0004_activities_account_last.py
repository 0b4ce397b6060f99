"""activities: index of the latest touch per account (the matcher's recent-activity tie-breaker)

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def _account_touches() -> sa.ColumnElement[bool]:
    # the condition of worker.match_stage.last_activity_by_account's query, rendered alike, so the index serves it
    return sa.and_(sa.column('account_crm_id').is_not(None), sa.column('is_deleted').is_(False))


def upgrade() -> None:
    # Partial and covering: the match stage reads the latest touch of every account from it alone rather than
    # scanning every touch (4 s of 6 on a large org). Building it takes about 8 s per 6 million touches.
    op.create_index('ix_activities_account_last', 'activities', ['crm', 'account_crm_id', 'occurred_at'],
                    unique=False, sqlite_where=_account_touches(), postgresql_where=_account_touches())


def downgrade() -> None:
    op.drop_index('ix_activities_account_last', table_name='activities')
