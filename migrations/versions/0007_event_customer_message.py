"""tracking_events.customer_message: what the customer is told, apart from the staff-only note

Revision ID: 0007_event_customer_message
Revises: 0006_render_in_worker
Create Date: 2026-12-01 08:00:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0007_event_customer_message'
down_revision = '0006_render_in_worker'
branch_labels = None
depends_on = None


def upgrade():
    # Nullable, no default: no existing event is rewritten (the event log stays as it was written).
    op.add_column('tracking_events', sa.Column('customer_message', sa.String(length=500), nullable=True))


def downgrade():
    with op.batch_alter_table('tracking_events') as batch_op:  # SQLite drops a column by rebuilding the table
        batch_op.drop_column('customer_message')
