"""couriers in the field: courier profiles (vehicle, capacity, shift, last position), their kept positions, run
sheets and their stops (one open stop per parcel, by a partial unique index), the courier app's event receipts
(a replayed client id applies nothing twice), cash on delivery collected and remitted, the field settings and
the delivery codes; tracking events indexed by actor and time (a courier's day)

Revision ID: 0020_couriers
Revises: 0019_parcel_details
Create Date: 2026-12-07 11:22:18
"""
import sqlalchemy as sa
from alembic import op

revision = '0020_couriers'
down_revision = '0019_parcel_details'
branch_labels = None
depends_on = None

OPEN = sa.text("state = 'open'")


def upgrade():
    with op.batch_alter_table('tracking_events', schema=None) as batch_op:
        batch_op.create_index('ix_tracking_events_actor_occurred', ['actor', 'occurred_at'], unique=False)
    op.create_table('field_settings',
    sa.Column('key', sa.String(length=32), nullable=False),
    sa.Column('value', sa.String(length=16), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('cod_remittances',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.Integer(), nullable=False),
    sa.Column('amount', sa.Numeric(precision=10, scale=2), nullable=False),
    sa.Column('reference', sa.String(length=64), nullable=False),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('received_by', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['courier_id'], ['users.id'], ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('cod_remittances', schema=None) as batch_op:
        batch_op.create_index('ix_cod_remittances_courier_at', ['courier_id', 'received_at'], unique=False)

    op.create_table('courier_positions',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('courier_id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('lat', sa.Float(), nullable=False),
    sa.Column('lon', sa.Float(), nullable=False),
    sa.Column('accuracy', sa.Float(), nullable=False),
    sa.Column('speed', sa.Float(), nullable=True),
    sa.Column('heading', sa.Float(), nullable=True),
    sa.Column('battery', sa.Float(), nullable=True),
    sa.ForeignKeyConstraint(['courier_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('courier_positions', schema=None) as batch_op:
        batch_op.create_index('ix_courier_positions_at', ['at'], unique=False)
        batch_op.create_index('ix_courier_positions_courier_at', ['courier_id', 'at'], unique=False)

    op.create_table('courier_profiles',
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=100), nullable=True),
    sa.Column('vehicle', sa.String(length=16), nullable=False),
    sa.Column('capacity', sa.Integer(), nullable=False),
    sa.Column('shift_start', sa.Time(), nullable=False),
    sa.Column('shift_end', sa.Time(), nullable=False),
    sa.Column('last_lat', sa.Float(), nullable=True),
    sa.Column('last_lon', sa.Float(), nullable=True),
    sa.Column('last_accuracy', sa.Float(), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('anchor_lat', sa.Float(), nullable=True),
    sa.Column('anchor_lon', sa.Float(), nullable=True),
    sa.Column('moved_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('user_id')
    )
    op.create_table('delivery_codes',
    sa.Column('shipment_id', sa.Integer(), nullable=False),
    sa.Column('code_hash', sa.String(length=255), nullable=False),
    sa.Column('issued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('failures', sa.Integer(), nullable=False),
    sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('used_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('shipment_id')
    )
    op.create_table('runsheets',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.Integer(), nullable=False),
    sa.Column('date', sa.Date(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('dispatched_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('dispatched_by', sa.String(length=64), nullable=True),
    sa.ForeignKeyConstraint(['courier_id'], ['users.id'], ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('courier_id', 'date', name='uq_runsheets_courier_date')
    )
    op.create_table('cod_collections',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shipment_id', sa.Integer(), nullable=False),
    sa.Column('event_id', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.Integer(), nullable=False),
    sa.Column('expected', sa.Numeric(precision=9, scale=2), nullable=False),
    sa.Column('collected', sa.Numeric(precision=9, scale=2), nullable=False),
    sa.Column('method', sa.String(length=8), nullable=False),
    sa.Column('upi_reference', sa.String(length=64), nullable=True),
    sa.Column('collected_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['courier_id'], ['users.id'], ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['event_id'], ['tracking_events.id'], ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('event_id')
    )
    with op.batch_alter_table('cod_collections', schema=None) as batch_op:
        batch_op.create_index('ix_cod_collections_courier_at', ['courier_id', 'collected_at'], unique=False)

    op.create_table('courier_event_receipts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('courier_id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.String(length=64), nullable=False),
    sa.Column('tracking_id', sa.String(length=32), nullable=False),
    sa.Column('status', sa.String(length=32), nullable=False),
    sa.Column('happened_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('received_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('outcome', sa.String(length=16), nullable=False),
    sa.Column('error', sa.String(length=200), nullable=True),
    sa.Column('event_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['courier_id'], ['users.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['event_id'], ['tracking_events.id'], ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('courier_id', 'client_id', name='uq_courier_event_receipts_client')
    )
    op.create_table('runsheet_stops',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('runsheet_id', sa.Integer(), nullable=False),
    sa.Column('shipment_id', sa.Integer(), nullable=False),
    sa.Column('sequence', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.Column('eta', sa.DateTime(timezone=True), nullable=True),
    sa.Column('added_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('closed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['runsheet_id'], ['runsheets.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], ondelete='RESTRICT'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('runsheet_stops', schema=None) as batch_op:
        batch_op.create_index('ix_runsheet_stops_runsheet_sequence', ['runsheet_id', 'sequence'], unique=False)
        batch_op.create_index('ix_runsheet_stops_shipment', ['shipment_id'], unique=False)
        batch_op.create_index('uq_runsheet_stops_open_shipment', ['shipment_id'], unique=True,
                              postgresql_where=OPEN, sqlite_where=OPEN)



def downgrade():
    with op.batch_alter_table('tracking_events', schema=None) as batch_op:
        batch_op.drop_index('ix_tracking_events_actor_occurred')
    with op.batch_alter_table('runsheet_stops', schema=None) as batch_op:
        batch_op.drop_index('uq_runsheet_stops_open_shipment',
                              postgresql_where=OPEN, sqlite_where=OPEN)
        batch_op.drop_index('ix_runsheet_stops_shipment')
        batch_op.drop_index('ix_runsheet_stops_runsheet_sequence')

    op.drop_table('runsheet_stops')
    op.drop_table('courier_event_receipts')
    with op.batch_alter_table('cod_collections', schema=None) as batch_op:
        batch_op.drop_index('ix_cod_collections_courier_at')

    op.drop_table('cod_collections')
    op.drop_table('runsheets')
    op.drop_table('delivery_codes')
    op.drop_table('courier_profiles')
    with op.batch_alter_table('courier_positions', schema=None) as batch_op:
        batch_op.drop_index('ix_courier_positions_courier_at')
        batch_op.drop_index('ix_courier_positions_at')

    op.drop_table('courier_positions')
    with op.batch_alter_table('cod_remittances', schema=None) as batch_op:
        batch_op.drop_index('ix_cod_remittances_courier_at')

    op.drop_table('cod_remittances')
    op.drop_table('field_settings')
