"""shipments remember the language they were booked in

Revision ID: 0013_shipment_language
Revises: 0012_notification_choices
Create Date: 2026-12-01 11:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0013_shipment_language'
down_revision = '0012_notification_choices'
branch_labels = None
depends_on = None


def upgrade():
    # Shipments booked before languages existed were booked in English.
    with op.batch_alter_table('shipments') as batch_op:
        batch_op.add_column(sa.Column('language', sa.String(length=8), server_default='en', nullable=False))


def downgrade():
    with op.batch_alter_table('shipments') as batch_op:
        batch_op.drop_column('language')
