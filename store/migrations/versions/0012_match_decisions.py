"""matches: an index on decision; people: a partial index on the deleted ones. The match stage counts the
live people per decision from them (every match by decision, less the deleted people's) rather than by
joining every match with its person, and finds the people no account holds without scanning everyone

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05
"""
import sqlalchemy as sa
from alembic import op

revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def _deleted() -> sa.ColumnElement[bool]:
    # the condition of worker.match_stage.decision_counts' query, rendered alike, so the index serves it
    return sa.column('is_deleted').is_(True)


def upgrade() -> None:
    op.create_index('ix_matches_decision', 'matches', ['decision'], unique=False)
    deleted = _deleted()
    op.create_index('ix_people_deleted', 'people', ['id'], unique=False, sqlite_where=deleted,
                    postgresql_where=deleted)


def downgrade() -> None:
    op.drop_index('ix_people_deleted', table_name='people')
    op.drop_index('ix_matches_decision', table_name='matches')
