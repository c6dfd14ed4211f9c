"""shipments may hold the sender's mobile and email, for the sender's notices of the return leg

Revision ID: 0018_sender_contacts
Revises: 0017_rate_cards
Create Date: 2026-12-08 09:00:00

Both are optional (NULL: not given, as for every shipment booked before), so the columns are added without a
rewrite of the table.
"""
import sqlalchemy as sa
from alembic import op

revision = '0018_sender_contacts'
down_revision = '0017_rate_cards'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('shipments') as batch_op:
        batch_op.add_column(sa.Column('sender_mobile', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('sender_email', sa.String(length=254), nullable=True))


def downgrade():
    with op.batch_alter_table('shipments') as batch_op:
        batch_op.drop_column('sender_email')
        batch_op.drop_column('sender_mobile')
