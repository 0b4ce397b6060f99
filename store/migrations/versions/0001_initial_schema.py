"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-22
"""
from alembic import op
import sqlalchemy as sa
import store.types
from sqlalchemy.dialects import postgresql

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    
    op.create_table('accounts',
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('website', sa.Text(), nullable=True),
    sa.Column('domain', sa.String(length=255), nullable=True),
    sa.Column('industry', sa.String(length=255), nullable=True),
    sa.Column('employees', sa.Integer(), nullable=True),
    sa.Column('annual_revenue', sa.Float(), nullable=True),
    sa.Column('country', sa.String(length=128), nullable=True),
    sa.Column('state', sa.String(length=128), nullable=True),
    sa.Column('city', sa.String(length=255), nullable=True),
    sa.Column('phone', sa.String(length=64), nullable=True),
    sa.Column('parent_crm_id', sa.String(length=64), nullable=True),
    sa.Column('type', sa.String(length=128), nullable=True),
    sa.Column('owner_crm_id', sa.String(length=64), nullable=True),
    sa.Column('linked_salesforce_id', sa.String(length=64), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('crm', sa.String(length=16), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=False),
    sa.Column('crm_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('modified_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.Column('merged_into', sa.String(length=64), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('synced_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('changed_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('crm', 'object', 'crm_id', name='uq_accounts_key')
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_domain'), ['domain'], unique=False)

    op.create_table('activities',
    sa.Column('activity_type', sa.String(length=64), nullable=False),
    sa.Column('crm_type', sa.String(length=255), nullable=True),
    sa.Column('team', sa.String(length=32), nullable=True),
    sa.Column('subject', sa.Text(), nullable=True),
    sa.Column('occurred_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('duration_seconds', sa.Integer(), nullable=True),
    sa.Column('person_crm_id', sa.String(length=64), nullable=True),
    sa.Column('account_crm_id', sa.String(length=64), nullable=True),
    sa.Column('campaign_crm_id', sa.String(length=64), nullable=True),
    sa.Column('campaign_type', sa.String(length=255), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('crm', sa.String(length=16), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=False),
    sa.Column('crm_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('modified_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.Column('merged_into', sa.String(length=64), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('synced_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('changed_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_activities')),
    sa.UniqueConstraint('crm', 'object', 'crm_id', name='uq_activities_key')
    )
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_activities_account_crm_id'), ['account_crm_id'], unique=False)
        batch_op.create_index('ix_activities_occurred_at', ['occurred_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_activities_person_crm_id'), ['person_crm_id'], unique=False)

    op.create_table('campaigns',
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('type', sa.String(length=255), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('crm', sa.String(length=16), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=False),
    sa.Column('crm_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('modified_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.Column('merged_into', sa.String(length=64), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('synced_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('changed_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_campaigns')),
    sa.UniqueConstraint('crm', 'object', 'crm_id', name='uq_campaigns_key')
    )
    op.create_table('crm_users',
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('crm', sa.String(length=16), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=False),
    sa.Column('crm_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('modified_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.Column('merged_into', sa.String(length=64), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('synced_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('changed_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crm_users')),
    sa.UniqueConstraint('crm', 'object', 'crm_id', name='uq_crm_users_key')
    )
    op.create_table('locks',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('holder', sa.String(length=255), nullable=False),
    sa.Column('acquired_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_locks'))
    )
    op.create_table('opportunities',
    sa.Column('name', sa.Text(), nullable=True),
    sa.Column('account_crm_id', sa.String(length=64), nullable=True),
    sa.Column('stage', sa.String(length=255), nullable=True),
    sa.Column('is_closed', sa.Boolean(), nullable=False),
    sa.Column('is_won', sa.Boolean(), nullable=False),
    sa.Column('amount', sa.Float(), nullable=True),
    sa.Column('close_date', sa.Date(), nullable=True),
    sa.Column('closed_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('crm', sa.String(length=16), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=False),
    sa.Column('crm_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('modified_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.Column('merged_into', sa.String(length=64), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('synced_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('changed_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_opportunities')),
    sa.UniqueConstraint('crm', 'object', 'crm_id', name='uq_opportunities_key')
    )
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_opportunities_account_crm_id'), ['account_crm_id'], unique=False)

    op.create_table('people',
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('first_name', sa.Text(), nullable=True),
    sa.Column('last_name', sa.Text(), nullable=True),
    sa.Column('email', sa.String(length=320), nullable=True),
    sa.Column('title', sa.Text(), nullable=True),
    sa.Column('company', sa.Text(), nullable=True),
    sa.Column('website', sa.Text(), nullable=True),
    sa.Column('phone', sa.String(length=64), nullable=True),
    sa.Column('country', sa.String(length=128), nullable=True),
    sa.Column('state', sa.String(length=128), nullable=True),
    sa.Column('city', sa.String(length=255), nullable=True),
    sa.Column('industry', sa.String(length=255), nullable=True),
    sa.Column('employees', sa.Integer(), nullable=True),
    sa.Column('account_crm_id', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=128), nullable=True),
    sa.Column('is_converted', sa.Boolean(), nullable=False),
    sa.Column('converted_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('converted_account_crm_id', sa.String(length=64), nullable=True),
    sa.Column('converted_contact_crm_id', sa.String(length=64), nullable=True),
    sa.Column('source', sa.String(length=255), nullable=True),
    sa.Column('owner_crm_id', sa.String(length=64), nullable=True),
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('crm', sa.String(length=16), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=False),
    sa.Column('crm_id', sa.String(length=64), nullable=False),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('modified_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('is_deleted', sa.Boolean(), nullable=False),
    sa.Column('merged_into', sa.String(length=64), nullable=True),
    sa.Column('extra', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('synced_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('changed_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_people')),
    sa.UniqueConstraint('crm', 'object', 'crm_id', name='uq_people_key')
    )
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_people_account_crm_id'), ['account_crm_id'], unique=False)
        batch_op.create_index('ix_people_email', ['email'], unique=False)

    op.create_table('predictive_models',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('target', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('is_active', sa.Boolean(), nullable=False),
    sa.Column('trained_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('metrics', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('params', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('blob', sa.LargeBinary(), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_predictive_models')),
    sa.UniqueConstraint('target', 'version', name='uq_predictive_models_version')
    )
    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('trigger', sa.String(length=32), nullable=False),
    sa.Column('state', sa.String(length=32), nullable=False),
    sa.Column('options', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('counts', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('api_calls', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('stages', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('created_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('started_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('finished_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('heartbeat_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index('ix_runs_state', ['state'], unique=False)

    op.create_table('score_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entity_kind', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.BigInteger(), nullable=False),
    sa.Column('day', sa.Date(), nullable=False),
    sa.Column('engagement', sa.Float(), nullable=True),
    sa.Column('sales_activity', sa.Float(), nullable=True),
    sa.Column('marketing', sa.Float(), nullable=True),
    sa.Column('fit', sa.Float(), nullable=True),
    sa.Column('grade', sa.Integer(), nullable=True),
    sa.Column('predictive', sa.Float(), nullable=True),
    sa.Column('breadth', sa.Float(), nullable=True),
    sa.Column('velocity', sa.Float(), nullable=True),
    sa.Column('trend', sa.String(length=32), nullable=True),
    sa.Column('alignment', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_score_history')),
    sa.UniqueConstraint('entity_kind', 'entity_id', 'day', name='uq_score_history_day')
    )
    op.create_table('scores',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('entity_kind', sa.String(length=16), nullable=False),
    sa.Column('entity_id', sa.BigInteger(), nullable=False),
    sa.Column('reasons_text', sa.Text(), nullable=True),
    sa.Column('breakdown', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('model_version', sa.Integer(), nullable=True),
    sa.Column('scored_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('engagement', sa.Float(), nullable=True),
    sa.Column('sales_activity', sa.Float(), nullable=True),
    sa.Column('marketing', sa.Float(), nullable=True),
    sa.Column('fit', sa.Float(), nullable=True),
    sa.Column('grade', sa.Integer(), nullable=True),
    sa.Column('predictive', sa.Float(), nullable=True),
    sa.Column('breadth', sa.Float(), nullable=True),
    sa.Column('velocity', sa.Float(), nullable=True),
    sa.Column('trend', sa.String(length=32), nullable=True),
    sa.Column('alignment', sa.String(length=32), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_scores')),
    sa.UniqueConstraint('entity_kind', 'entity_id', name='uq_scores_entity')
    )
    op.create_table('sync_cursors',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('crm', sa.String(length=16), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=False),
    sa.Column('cursor_ts', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('cursor_id', sa.String(length=64), nullable=True),
    sa.Column('state', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('updated_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_sync_cursors')),
    sa.UniqueConstraint('crm', 'object', name='uq_sync_cursors_key')
    )
    op.create_table('writeback_errors',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('crm', sa.String(length=16), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=False),
    sa.Column('crm_id', sa.String(length=64), nullable=False),
    sa.Column('fields', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('code', sa.String(length=128), nullable=True),
    sa.Column('message', sa.Text(), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('first_failed_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('last_failed_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('next_retry_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_writeback_errors')),
    sa.UniqueConstraint('crm', 'object', 'crm_id', name='uq_writeback_errors_key')
    )
    op.create_table('writeback_state',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('crm', sa.String(length=16), nullable=False),
    sa.Column('object', sa.String(length=64), nullable=False),
    sa.Column('crm_id', sa.String(length=64), nullable=False),
    sa.Column('field', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('written_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_writeback_state')),
    sa.UniqueConstraint('crm', 'object', 'crm_id', 'field', name='uq_writeback_state_key')
    )
    op.create_table('account_links',
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('canonical_account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('method', sa.String(length=64), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('linked_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_links_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['canonical_account_id'], ['accounts.id'], name=op.f('fk_account_links_canonical_account_id_accounts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('account_id', name=op.f('pk_account_links'))
    )
    with op.batch_alter_table('account_links', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_account_links_canonical_account_id'), ['canonical_account_id'], unique=False)

    op.create_table('matches',
    sa.Column('person_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('account_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('decision', sa.String(length=16), nullable=False),
    sa.Column('method', sa.String(length=64), nullable=True),
    sa.Column('confidence', sa.Float(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.Column('reasons', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=True),
    sa.Column('pinned', sa.Boolean(), nullable=False),
    sa.Column('pinned_by', sa.String(length=255), nullable=True),
    sa.Column('matched_at', store.types.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_matches_account_id_accounts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['person_id'], ['people.id'], name=op.f('fk_matches_person_id_people'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('person_id', name=op.f('pk_matches'))
    )
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_matches_account_id'), ['account_id'], unique=False)

    


def downgrade() -> None:
    
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_matches_account_id'))

    op.drop_table('matches')
    with op.batch_alter_table('account_links', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_account_links_canonical_account_id'))

    op.drop_table('account_links')
    op.drop_table('writeback_state')
    op.drop_table('writeback_errors')
    op.drop_table('sync_cursors')
    op.drop_table('scores')
    op.drop_table('score_history')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index('ix_runs_state')

    op.drop_table('runs')
    op.drop_table('predictive_models')
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_index('ix_people_email')
        batch_op.drop_index(batch_op.f('ix_people_account_crm_id'))

    op.drop_table('people')
    with op.batch_alter_table('opportunities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_opportunities_account_crm_id'))

    op.drop_table('opportunities')
    op.drop_table('locks')
    op.drop_table('crm_users')
    op.drop_table('campaigns')
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_activities_person_crm_id'))
        batch_op.drop_index('ix_activities_occurred_at')
        batch_op.drop_index(batch_op.f('ix_activities_account_crm_id'))

    op.drop_table('activities')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_domain'))

    op.drop_table('accounts')
    
