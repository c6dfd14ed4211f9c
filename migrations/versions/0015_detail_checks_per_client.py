"""detail_checks per shipment and client: misses and locks per (shipment, client), and one row per shipment
("*") for the ceiling across all clients

Revision ID: 0015_detail_checks_per_client
Revises: 0014_webhooks
Create Date: 2026-12-07 06:00:00

The counters are short-lived (15 minutes, a day at most): the table is built again rather than converted.
"""
import sqlalchemy as sa
from alembic import op

revision = '0015_detail_checks_per_client'
down_revision = '0014_webhooks'
branch_labels = None
depends_on = None


def _create(per_client: bool) -> None:
    keys = ['shipment_id', 'client_key'] if per_client else ['shipment_id']
    op.create_table(
        'detail_checks',
        sa.Column('shipment_id', sa.Integer(), nullable=False),
        *([sa.Column('client_key', sa.String(length=64), nullable=False)] if per_client else []),
        sa.Column('misses', sa.Integer(), nullable=False),
        sa.Column('window_started_at', sa.DateTime(timezone=True), nullable=True),
        sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['shipment_id'], ['shipments.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint(*keys),
    )


def upgrade():
    op.drop_table('detail_checks')
    _create(per_client=True)


def downgrade():
    op.drop_table('detail_checks')
    _create(per_client=False)
