"""failed deliveries and operations: non-delivery reports, timers (rule 13), alerts, promise rules, and each
parcel's promised date

Revision ID: 0022_failed_deliveries
Revises: 0021_planning
Create Date: 2026-12-07 17:22:39
"""
import sqlalchemy as sa
from alembic import op

revision = '0022_failed_deliveries'
down_revision = '0021_planning'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('promise_rules',
    sa.Column('service', sa.String(length=16), nullable=False),
    sa.Column('zone', sa.String(length=16), nullable=False),
    sa.Column('days', sa.Integer(), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('service', 'zone')
    )
    op.create_table('alerts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('cause', sa.String(length=96), nullable=False),
    sa.Column('shipment_id', sa.Integer(), nullable=True),
    sa.Column('courier_id', sa.Integer(), nullable=True),
    sa.Column('raised_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('details', sa.JSON(), nullable=False),
    sa.Column('acknowledged_by', sa.String(length=64), nullable=True),
    sa.Column('acknowledged_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('note', sa.String(length=500), nullable=True),
    sa.Column('emailed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['courier_id'], ['users.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('kind', 'cause', name='uq_alerts_kind_cause')
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index('ix_alerts_emailed_at', ['emailed_at'], unique=False)
        batch_op.create_index('ix_alerts_raised_at', ['raised_at'], unique=False)

    op.create_table('ndrs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shipment_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('attempt', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=32), nullable=True),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('opened_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('deadline', sa.DateTime(timezone=True), nullable=True),
    sa.Column('reattempt_due_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('escalated_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('action', sa.String(length=16), nullable=True),
    sa.Column('answer_date', sa.Date(), nullable=True),
    sa.Column('instructions', sa.String(length=200), nullable=True),
    sa.Column('landmark', sa.String(length=120), nullable=True),
    sa.Column('corrected_address', sa.String(length=200), nullable=True),
    sa.Column('alternate_mobile', sa.String(length=16), nullable=True),
    sa.Column('answered_by', sa.String(length=64), nullable=True),
    sa.Column('answered_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.ForeignKeyConstraint(['event_id'], ['tracking_events.id'], ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('ndrs', schema=None) as batch_op:
        batch_op.create_index('ix_ndrs_shipment', ['shipment_id', 'attempt'], unique=False)
        batch_op.create_index('ix_ndrs_state_deadline', ['state', 'deadline'], unique=False)
        batch_op.create_index('uq_ndrs_open_shipment', ['shipment_id'], unique=True,
                                 postgresql_where=sa.text("state = 'open'"), sqlite_where=sa.text("state = 'open'"))

    op.create_table('timers',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('key', sa.String(length=96), nullable=False),
    sa.Column('shipment_id', sa.Integer(), nullable=True),
    sa.Column('ndr_id', sa.Integer(), nullable=True),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('state', sa.String(length=10), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('last_error', sa.String(length=500), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('done_by', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['ndr_id'], ['ndrs.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('key')
    )
    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.create_index('ix_timers_ndr', ['ndr_id'], unique=False)
        batch_op.create_index('ix_timers_pending_due', ['due_at'], unique=False,
                              postgresql_where=sa.text("state = 'pending'"), sqlite_where=sa.text("state = 'pending'"))

    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('promised_by', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_shipments_promised_by', ['promised_by'], unique=False)



def downgrade():
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.drop_index('ix_shipments_promised_by')
        batch_op.drop_column('promised_by')

    with op.batch_alter_table('timers', schema=None) as batch_op:
        batch_op.drop_index('ix_timers_pending_due')
        batch_op.drop_index('ix_timers_ndr')

    op.drop_table('timers')
    with op.batch_alter_table('ndrs', schema=None) as batch_op:
        batch_op.drop_index('uq_ndrs_open_shipment')
        batch_op.drop_index('ix_ndrs_state_deadline')
        batch_op.drop_index('ix_ndrs_shipment')

    op.drop_table('ndrs')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index('ix_alerts_raised_at')
        batch_op.drop_index('ix_alerts_emailed_at')

    op.drop_table('alerts')
    op.drop_table('promise_rules')
