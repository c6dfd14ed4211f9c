"""served_pincodes: the PIN codes the network delivers to, with cash on delivery and express per PIN code

Revision ID: 0016_serviceability
Revises: 0015_detail_checks_per_client
Create Date: 2026-12-07 09:30:00

Empty after the upgrade, which means every PIN code of the directory is served: nothing changes for bookings
until an admin uploads a list.
"""
import sqlalchemy as sa
from alembic import op

revision = '0016_serviceability'
down_revision = '0015_detail_checks_per_client'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'served_pincodes',
        sa.Column('pincode', sa.String(length=6), nullable=False),
        sa.Column('cod', sa.Boolean(), nullable=False),
        sa.Column('express', sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint('pincode'),
    )


def downgrade():
    op.drop_table('served_pincodes')
