"""score state for incremental scoring, and indexes on the change stamps it reads

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""
from alembic import op
import sqlalchemy as sa
import store.types
from sqlalchemy.dialects import postgresql

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('score_state',
    sa.Column('name', sa.String(length=64), nullable=False),
    sa.Column('computed_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('as_of', sa.BigInteger(), nullable=False),
    sa.Column('config_hash', sa.String(length=64), nullable=False),
    sa.Column('state', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_score_state'))
    )
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.create_index('ix_activities_changed_at', ['changed_at'], unique=False)
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.create_index('ix_people_changed_at', ['changed_at'], unique=False)
        batch_op.create_index('ix_people_converted_account_crm_id', ['converted_account_crm_id'], unique=False)
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.create_index('ix_matches_matched_at', ['matched_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.drop_index('ix_matches_matched_at')
    with op.batch_alter_table('people', schema=None) as batch_op:
        batch_op.drop_index('ix_people_converted_account_crm_id')
        batch_op.drop_index('ix_people_changed_at')
    with op.batch_alter_table('activities', schema=None) as batch_op:
        batch_op.drop_index('ix_activities_changed_at')
    op.drop_table('score_state')
