"""planning: delivery zones, where each parcel goes on the map (its point, how precise, its zone) and its delivery
window, dispatch runs (a scheduled slot once per zone, by a unique key), supervisors' overrides of planned stops,
the geocoder's cache, a courier's own start point, and the run that planned a run sheet

Revision ID: 0021_planning
Revises: 0020_couriers
Create Date: 2026-12-07 14:14:57
"""
import sqlalchemy as sa
from alembic import op

revision = '0021_planning'
down_revision = '0020_couriers'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('geocode_cache',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('provider', sa.String(length=16), nullable=False),
    sa.Column('lat', sa.Float(), nullable=True),
    sa.Column('lon', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key')
    )
    op.create_table('zones',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=80), nullable=False),
    sa.Column('geometry', sa.JSON(), nullable=False),
    sa.Column('hub_lat', sa.Float(), nullable=True),
    sa.Column('hub_lon', sa.Float(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_by', sa.String(length=64), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name')
    )
    op.create_table('dispatch_runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=8), nullable=False),
    sa.Column('zone_id', sa.Integer(), nullable=True),
    sa.Column('plan_date', sa.Date(), nullable=False),
    sa.Column('couriers', sa.JSON(), nullable=True),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=True),
    sa.Column('solver', sa.String(length=32), nullable=True),
    sa.Column('seconds', sa.Float(), nullable=True),
    sa.Column('result', sa.JSON(), nullable=True),
    sa.Column('error', sa.String(length=500), nullable=True),
    sa.Column('attempts', sa.Integer(), server_default='0', nullable=False),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['zone_id'], ['zones.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('zone_id', 'scheduled_for', name='uq_dispatch_runs_zone_slot')
    )
    with op.batch_alter_table('dispatch_runs', schema=None) as batch_op:
        batch_op.create_index('ix_dispatch_runs_state_created', ['state', 'created_at'], unique=False)

    op.create_table('runsheet_overrides',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('shipment_id', sa.Integer(), nullable=False),
    sa.Column('from_runsheet_id', sa.Integer(), nullable=True),
    sa.Column('from_sequence', sa.Integer(), nullable=True),
    sa.Column('to_runsheet_id', sa.Integer(), nullable=True),
    sa.Column('to_sequence', sa.Integer(), nullable=False),
    sa.Column('reason', sa.String(length=200), nullable=False),
    sa.Column('actor', sa.String(length=64), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['from_runsheet_id'], ['runsheets.id'], ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], ondelete='RESTRICT'),
    sa.ForeignKeyConstraint(['to_runsheet_id'], ['runsheets.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('runsheet_overrides', schema=None) as batch_op:
        batch_op.create_index('ix_runsheet_overrides_at', ['at'], unique=False)

    with op.batch_alter_table('courier_profiles', schema=None) as batch_op:
        batch_op.add_column(sa.Column('start_lat', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('start_lon', sa.Float(), nullable=True))

    with op.batch_alter_table('runsheets', schema=None) as batch_op:
        batch_op.add_column(sa.Column('dispatch_run_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_runsheets_dispatch_run_id', 'dispatch_runs', ['dispatch_run_id'], ['id'],
                                    ondelete='SET NULL')

    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.add_column(sa.Column('destination_lat', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('destination_lon', sa.Float(), nullable=True))
        batch_op.add_column(sa.Column('destination_precision', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('zone_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('window_from', sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('window_to', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_shipments_zone_status', ['zone_id', 'status'], unique=False)
        batch_op.create_foreign_key('fk_shipments_zone_id', 'zones', ['zone_id'], ['id'], ondelete='SET NULL')



def downgrade():
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.drop_constraint('fk_shipments_zone_id', type_='foreignkey')
        batch_op.drop_index('ix_shipments_zone_status')
        batch_op.drop_column('window_to')
        batch_op.drop_column('window_from')
        batch_op.drop_column('zone_id')
        batch_op.drop_column('destination_precision')
        batch_op.drop_column('destination_lon')
        batch_op.drop_column('destination_lat')

    with op.batch_alter_table('runsheets', schema=None) as batch_op:
        batch_op.drop_constraint('fk_runsheets_dispatch_run_id', type_='foreignkey')
        batch_op.drop_column('dispatch_run_id')

    with op.batch_alter_table('courier_profiles', schema=None) as batch_op:
        batch_op.drop_column('start_lon')
        batch_op.drop_column('start_lat')

    with op.batch_alter_table('runsheet_overrides', schema=None) as batch_op:
        batch_op.drop_index('ix_runsheet_overrides_at')

    op.drop_table('runsheet_overrides')
    with op.batch_alter_table('dispatch_runs', schema=None) as batch_op:
        batch_op.drop_index('ix_dispatch_runs_state_created')

    op.drop_table('dispatch_runs')
    op.drop_table('zones')
    op.drop_table('geocode_cache')
