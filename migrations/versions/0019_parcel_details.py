"""shipments: the parcel and its payment (weight, size, pieces, declared value, service, cash on delivery), the
sender's address and PIN code, pickup, the destination PIN code, the charges priced and their rate card; the
recipient's email becomes optional (a mobile is enough)

Revision ID: 0019_parcel_details
Revises: 0018_sender_contacts
Create Date: 2026-12-07 09:30:00

Every new column is nullable or has a default, so existing bookings read as a prepaid, standard, single piece.
"""
import sqlalchemy as sa
from alembic import op

revision = '0019_parcel_details'
down_revision = '0018_sender_contacts'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        batch_op.alter_column('email', existing_type=sa.String(length=254), nullable=True)
        batch_op.add_column(sa.Column('sender_address', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('sender_pincode', sa.String(length=6), nullable=True))
        batch_op.add_column(sa.Column('pickup', sa.Boolean(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('destination_pincode', sa.String(length=6), nullable=True))
        batch_op.add_column(sa.Column('weight_kg', sa.Numeric(precision=7, scale=3), nullable=True))
        batch_op.add_column(sa.Column('length_cm', sa.Numeric(precision=4, scale=1), nullable=True))
        batch_op.add_column(sa.Column('width_cm', sa.Numeric(precision=4, scale=1), nullable=True))
        batch_op.add_column(sa.Column('height_cm', sa.Numeric(precision=4, scale=1), nullable=True))
        batch_op.add_column(sa.Column('pieces', sa.Integer(), server_default='1', nullable=False))
        batch_op.add_column(sa.Column('declared_value', sa.Numeric(precision=10, scale=2), nullable=True))
        batch_op.add_column(sa.Column('contents', sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column('service', sa.String(length=16), server_default='standard', nullable=False))
        batch_op.add_column(sa.Column('payment', sa.String(length=16), server_default='prepaid', nullable=False))
        batch_op.add_column(sa.Column('cod_amount', sa.Numeric(precision=9, scale=2), nullable=True))
        batch_op.add_column(sa.Column('charges', sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column('rate_card_version', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('shipments', schema=None) as batch_op:
        for column in ('rate_card_version', 'charges', 'cod_amount', 'payment', 'service', 'contents',
                       'declared_value', 'pieces', 'height_cm', 'width_cm', 'length_cm', 'weight_kg',
                       'destination_pincode', 'pickup', 'sender_pincode', 'sender_address'):
            batch_op.drop_column(column)
        batch_op.alter_column('email', existing_type=sa.String(length=254), nullable=False)
