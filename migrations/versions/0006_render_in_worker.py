"""outbox rows without rendered bodies (the worker renders them); drop two indexes no query uses

Revision ID: 0006_render_in_worker
Revises: 0005_delivery_estimates
Create Date: 2026-12-01 08:20:00

Emails are rendered by the outbox worker from the shipment and event a row names, so the bodies are no longer
stored. Rows still pending at the upgrade lose their stored bodies and are rendered from the same facts when
sent. A downgrade brings the columns back empty: rows queued after the upgrade would then go out without a body.

Indexes dropped: tracking_events (location, occurred_at) and notifications (shipment_id): no query filters or
sorts by them (shipments are never deleted, so no foreign-key check needs the second), and every booking paid
for both.
"""
import sqlalchemy as sa
from alembic import op

revision = '0006_render_in_worker'
down_revision = '0005_delivery_estimates'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.drop_index('ix_notifications_shipment_id')
        batch_op.drop_column('body_html')
        batch_op.drop_column('body_text')
    with op.batch_alter_table('tracking_events', schema=None) as batch_op:
        batch_op.drop_index('ix_tracking_events_location_occurred')


def downgrade():
    with op.batch_alter_table('tracking_events', schema=None) as batch_op:
        batch_op.create_index('ix_tracking_events_location_occurred', ['location', 'occurred_at'], unique=False)
    with op.batch_alter_table('notifications', schema=None) as batch_op:
        batch_op.add_column(sa.Column('body_text', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('body_html', sa.Text(), nullable=True))
        batch_op.create_index('ix_notifications_shipment_id', ['shipment_id'], unique=False)
