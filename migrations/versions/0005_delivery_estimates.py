"""delivery_estimates: time left to delivery per destination area and status, learned from history

Revision ID: 0005_delivery_estimates
Revises: 0004_audit_trail
Create Date: 2026-12-01 08:40:00

"""
import sqlalchemy as sa
from alembic import op

revision = '0005_delivery_estimates'
down_revision = '0004_audit_trail'
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'delivery_estimates',
        sa.Column('area', sa.String(length=64), nullable=False),
        sa.Column('status', sa.String(length=32), nullable=False),
        sa.Column('samples', sa.Integer(), nullable=False),
        sa.Column('p05_seconds', sa.Float(), nullable=False),
        sa.Column('p50_seconds', sa.Float(), nullable=False),
        sa.Column('p90_seconds', sa.Float(), nullable=False),
        sa.Column('refreshed_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('area', 'status'),
    )


def downgrade():
    op.drop_table('delivery_estimates')
