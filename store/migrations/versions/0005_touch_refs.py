"""activities: the store ids of the person and account a touch names (person_ref, account_ref)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def _unresolved(ref: str, key: str) -> sa.ColumnElement[bool]:
    # the conditions of store.touch_refs' updates, rendered alike, so the partial indexes serve them
    return sa.and_(sa.column(ref).is_(None), sa.column(key).is_not(None))


def upgrade() -> None:
    # The score stage reads every touch; resolving their string keys to entities took it 12 CPU s a run on a
    # large org. Touches now carry the ids, resolved once by store.touch_refs.
    op.add_column('activities', sa.Column('person_ref', sa.Integer(), nullable=True))
    op.add_column('activities', sa.Column('account_ref', sa.Integer(), nullable=True))
    op.create_index('ix_people_crm_key', 'people', ['crm', 'crm_id'], unique=False)
    op.create_index('ix_accounts_crm_key', 'accounts', ['crm', 'crm_id'], unique=False)
    # The touches already stored, resolved here as store.touch_refs resolves new ones (the live record with the
    # highest id where two share a key). About four minutes per 6 million touches on SQLite.
    for ref, key, target in (('person_ref', 'person_crm_id', 'people'), ('account_ref', 'account_crm_id', 'accounts')):
        op.execute(
            f'UPDATE activities SET {ref} = (SELECT t.id FROM {target} t WHERE t.crm = activities.crm '
            f'AND t.crm_id = activities.{key} ORDER BY t.is_deleted, t.id DESC LIMIT 1) WHERE {key} IS NOT NULL'
        )
    # built after the backfill, so that it holds only the touches left unresolved
    for ref, key, name in (('person_ref', 'person_crm_id', 'person'), ('account_ref', 'account_crm_id', 'account')):
        op.create_index(f'ix_activities_{name}_unresolved', 'activities', [ref, 'crm', key], unique=False,
                        sqlite_where=_unresolved(ref, key), postgresql_where=_unresolved(ref, key))


def downgrade() -> None:
    op.drop_index('ix_activities_account_unresolved', table_name='activities')
    op.drop_index('ix_activities_person_unresolved', table_name='activities')
    op.drop_index('ix_accounts_crm_key', table_name='accounts')
    op.drop_index('ix_people_crm_key', table_name='people')
    op.drop_column('activities', 'account_ref')
    op.drop_column('activities', 'person_ref')
