"""shipments: mobile search index ends with id, so newest-first needs no sort

Revision ID: 0003_search_index_with_id
Revises: 0002_outbox_partial_indexes
Create Date: 2026-11-21 21:12:00

"""
from alembic import op

revision = '0003_search_index_with_id'
down_revision = '0002_outbox_partial_indexes'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_shipments_mobile_created_id', 'shipments', ['mobile', 'created_at', 'id'], unique=False)
    op.drop_index('ix_shipments_mobile_created_at', table_name='shipments')


def downgrade():
    op.create_index('ix_shipments_mobile_created_at', 'shipments', ['mobile', 'created_at'], unique=False)
    op.drop_index('ix_shipments_mobile_created_id', table_name='shipments')
