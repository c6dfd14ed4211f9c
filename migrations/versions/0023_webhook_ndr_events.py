"""webhook subscriptions choose the non-delivery report's events (shipment.ndr_opened, shipment.ndr_resolved)
themselves; a subscription that took shipment.status_changed keeps receiving them

Revision ID: 0023_webhook_ndr_events
Revises: 0022_failed_deliveries
Create Date: 2026-12-07 21:00:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0023_webhook_ndr_events'
down_revision = '0022_failed_deliveries'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('on_ndr_opened', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('on_ndr_resolved', sa.Boolean(), server_default='0', nullable=False))
    # Until now the report's events went to every subscription that took shipment.status_changed: those keep them.
    op.execute("UPDATE webhook_subscriptions SET on_ndr_opened = on_status_changed, "
               "on_ndr_resolved = on_status_changed")


def downgrade():
    with op.batch_alter_table('webhook_subscriptions', schema=None) as batch_op:
        batch_op.drop_column('on_ndr_resolved')
        batch_op.drop_column('on_ndr_opened')
