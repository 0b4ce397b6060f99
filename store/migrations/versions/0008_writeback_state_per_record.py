"""writeback_state: one row per record ({field: value}) instead of one per field

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""
from alembic import op
import sqlalchemy as sa
import store.types
from sqlalchemy.dialects import postgresql

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

def _record_columns() -> list[sa.Column]:
    return [
        sa.Column('crm', sa.String(length=16), nullable=False),
        sa.Column('object', sa.String(length=64), nullable=False),
        sa.Column('crm_id', sa.String(length=64), nullable=False),
    ]


def upgrade() -> None:
    # An L org's 1.9 million written records held 24 million field rows (with their key index, most of the
    # store), and an incremental writeback read and rewrote ten of them per record. The values move into one
    # JSON object per record; a record's written_at and run_id become those of its latest field write.
    # The grouped rows go through a plain staging table so that the final table is created exactly as the
    # model declares it (its constraint names are taken while the old table exists).
    bind = op.get_bind()
    postgres = bind.dialect.name == 'postgresql'
    op.create_table('writeback_state_records', *_record_columns(),
                    sa.Column('field_values', sa.Text(), nullable=False),
                    sa.Column('written_at', store.types.UTCDateTime(timezone=True), nullable=False),
                    sa.Column('run_id', sa.Integer(), nullable=True))
    grouped = 'json_object_agg(field, value)::text' if postgres else 'json_group_object(field, value)'
    bind.execute(sa.text(
        'INSERT INTO writeback_state_records (crm, object, crm_id, field_values, written_at, run_id) '
        f'SELECT crm, object, crm_id, {grouped}, max(written_at), max(run_id) '
        'FROM writeback_state GROUP BY crm, object, crm_id'))
    op.drop_table('writeback_state')
    op.create_table('writeback_state',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    *_record_columns(),
    sa.Column('field_values', sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), 'postgresql'),
              nullable=False),
    sa.Column('written_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_writeback_state')),
    sa.UniqueConstraint('crm', 'object', 'crm_id', name='uq_writeback_state_key')
    )
    values = 'field_values::jsonb' if postgres else 'field_values'
    bind.execute(sa.text(
        'INSERT INTO writeback_state (crm, object, crm_id, field_values, written_at, run_id) '
        f'SELECT crm, object, crm_id, {values}, written_at, run_id FROM writeback_state_records'))
    op.drop_table('writeback_state_records')


def downgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == 'postgresql'
    op.rename_table('writeback_state', 'writeback_state_records')
    if postgres:  # index names are the schema's, not the table's: free them for the table created below
        op.execute('ALTER INDEX pk_writeback_state RENAME TO pk_writeback_state_records')
        op.execute('ALTER INDEX uq_writeback_state_key RENAME TO uq_writeback_state_records_key')
    op.create_table('writeback_state',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    *_record_columns(),
    sa.Column('field', sa.String(length=255), nullable=False),
    sa.Column('value', sa.Text(), nullable=True),
    sa.Column('written_at', store.types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_writeback_state')),
    sa.UniqueConstraint('crm', 'object', 'crm_id', 'field', name='uq_writeback_state_key')
    )
    each = ('jsonb_each_text(r.field_values)' if postgres else 'json_each(r.field_values)')
    bind.execute(sa.text(
        'INSERT INTO writeback_state (crm, object, crm_id, field, value, written_at, run_id) '
        f'SELECT r.crm, r.object, r.crm_id, f.key, f.value, r.written_at, r.run_id '
        f'FROM writeback_state_records r, {each} AS f ORDER BY r.crm, r.object, r.crm_id, f.key'))
    op.drop_table('writeback_state_records')
