"""activities: the index on occurred_at replaced by a small one on the touches with no time. Nothing read touches by
time through it but the count of those with none: 360 MB of the L org's store, kept up by every touch written

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06
"""
import sqlalchemy as sa
from alembic import op

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def _untimed() -> sa.ColumnElement[bool]:
    # the condition of worker.score_inputs.stream_activity_columns' count, rendered alike, so the index serves it
    return sa.column('occurred_at').is_(None)


def upgrade() -> None:
    op.drop_index('ix_activities_occurred_at', table_name='activities')
    untimed = _untimed()
    op.create_index('ix_activities_untimed', 'activities', ['id'], unique=False, sqlite_where=untimed,
                    postgresql_where=untimed)


def downgrade() -> None:
    op.drop_index('ix_activities_untimed', table_name='activities')
    op.create_index('ix_activities_occurred_at', 'activities', ['occurred_at'], unique=False)
