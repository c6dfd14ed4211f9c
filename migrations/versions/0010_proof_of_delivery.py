"""delivery_proofs: who received a delivery, why an attempt failed, and the stored signature and photo

Revision ID: 0010_proof_of_delivery
Revises: 0009_staff_sessions
Create Date: 2026-12-01 11:10:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0010_proof_of_delivery'
down_revision = '0009_staff_sessions'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'delivery_proofs',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('event_id', sa.Integer(), nullable=False),
        sa.Column('shipment_id', sa.Integer(), nullable=False),
        sa.Column('received_by', sa.String(length=100), nullable=True),
        sa.Column('attempt_reason', sa.String(length=32), nullable=True),
        sa.Column('signature_key', sa.String(length=200), nullable=True),
        sa.Column('photo_key', sa.String(length=200), nullable=True),
        sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['event_id'], ['tracking_events.id'], ondelete='RESTRICT'),
        sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], ondelete='RESTRICT'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('event_id'),
    )
    op.create_index('ix_delivery_proofs_shipment_id', 'delivery_proofs', ['shipment_id'])


def downgrade():
    op.drop_index('ix_delivery_proofs_shipment_id', table_name='delivery_proofs')
    op.drop_table('delivery_proofs')
