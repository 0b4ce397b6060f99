"""activities.ends_at: a meeting's end, so that a scheduled meeting becomes held once it has passed

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""
from datetime import timedelta

from alembic import op
import sqlalchemy as sa

from store.types import UTCDateTime

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None

_SCHEDULED = sa.column('activity_type') == 'meeting_scheduled'


def upgrade() -> None:
    # Incremental pulls never read a meeting again for having taken place: store.held_meetings completes the
    # scheduled meetings whose end has passed, and needs the end to do so.
    op.add_column('activities', sa.Column('ends_at', UTCDateTime(), nullable=True))
    # The meetings already stored get the end their start and length give (a Salesforce event without a length
    # ends as it starts, as the connector reads it; a HubSpot meeting without one has no known end). A few per
    # cent of an org's touches at most, so they are read and written here rather than in dialect-specific SQL.
    activities = sa.table('activities', sa.column('id', sa.Integer()), sa.column('crm', sa.String()),
                          sa.column('activity_type', sa.String()), sa.column('occurred_at', UTCDateTime()),
                          sa.column('duration_seconds', sa.Integer()), sa.column('ends_at', UTCDateTime()))
    bind = op.get_bind()
    rows = bind.execute(sa.select(activities.c.id, activities.c.crm, activities.c.occurred_at,
                                  activities.c.duration_seconds).where(_SCHEDULED, activities.c.occurred_at.is_not(None)))
    ends = [{'key': id_, 'ends': start + timedelta(seconds=seconds or 0)}
            for id_, crm, start, seconds in rows if seconds is not None or crm == 'salesforce']
    if ends:
        bind.execute(activities.update().where(activities.c.id == sa.bindparam('key')).values(ends_at=sa.bindparam('ends')),
                     ends)
    op.create_index('ix_activities_meetings_scheduled', 'activities', ['crm', 'ends_at'], unique=False,
                    sqlite_where=_SCHEDULED, postgresql_where=_SCHEDULED)


def downgrade() -> None:
    op.drop_index('ix_activities_meetings_scheduled', table_name='activities')
    op.drop_column('activities', 'ends_at')
