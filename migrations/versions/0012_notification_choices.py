"""notification choices per shipment and channel, default statuses per channel

Revision ID: 0012_notification_choices
Revises: 0011_api_keys
Create Date: 2026-12-01 11:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0012_notification_choices'
down_revision = '0011_api_keys'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'notification_choices',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('shipment_id', sa.Integer(), nullable=False),
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('choice', sa.String(length=16), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('shipment_id', 'channel', name='uq_notification_choices_shipment_channel'),
    )
    op.create_table(
        'notification_defaults',
        sa.Column('channel', sa.String(length=16), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('notify', sa.Boolean(), nullable=False),
        sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
        sa.Column('updated_by', sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint('channel', 'status'),
    )


def downgrade():
    op.drop_table('notification_defaults')
    op.drop_table('notification_choices')
