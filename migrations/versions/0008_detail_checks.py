"""detail_checks: misses and lock of the public "show full details" check, per shipment

Revision ID: 0008_detail_checks
Revises: 0007_event_customer_message
Create Date: 2026-12-01 08:05:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0008_detail_checks'
down_revision = '0007_event_customer_message'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'detail_checks',
        sa.Column('shipment_id', sa.Integer(), nullable=False),
        sa.Column('misses', sa.Integer(), nullable=False),
        sa.Column('window_started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('shipment_id'),
    )


def downgrade():
    op.drop_table('detail_checks')
